package collect

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/telemetry"
)

// words builds raw register words as an inverter serves them, written out by hand
// (not through Encode) so decoding is checked against the protocol, not itself.
func words(state, pvLo, pvHi, loadLo, loadHi, expLo, expHi, batt, soc, temp uint16) Words {
	w := Words{}
	for a := uint16(4989); a <= 4999; a++ {
		w[a] = 0
	}
	w[4989], w[4990], w[4991] = 'A'<<8|'B', '1'<<8|'2', '3'<<8 // "AB123", NUL-padded
	w[4999] = 0x0E0F
	w[5016], w[5017] = pvLo, pvHi
	w[13000], w[13001] = state, 123 // 12.3 kWh today
	w[13007], w[13008] = loadLo, loadHi
	w[13009], w[13010] = expLo, expHi
	w[13021], w[13022], w[13024] = batt, soc, temp
	return w
}

func TestDecodeBothSignsOfEveryFlow(t *testing.T) {
	tests := []struct {
		name string
		in   Words
		want Reading
	}{
		{"daytime charging with export",
			// pv 70000 W needs the high word: 70000 = 0x0001_1170
			words(StateCharging, 0x1170, 0x0001, 1500, 0, 60000, 0, 8500, 655, 253),
			Reading{Serial: "AB123", DeviceType: 0x0E0F, PVPowerW: 70000, PVDailyKWh: 12.3, LoadPowerW: 1500,
				ExportPowerW: 60000, BatteryPowerW: 8500, BatterySoCPct: 65.5, BatteryTempC: 25.3}},
		{"night discharging with import at -5.5 °C",
			// export -2345 W = 0xFFFF_F6D7 low word first; -5.5 °C = -55 = 0xFFC9
			words(StateDischarging, 0, 0, 4345, 0, 0xF6D7, 0xFFFF, 2000, 201, 0xFFC9),
			Reading{Serial: "AB123", DeviceType: 0x0E0F, PVPowerW: 0, PVDailyKWh: 12.3, LoadPowerW: 4345,
				ExportPowerW: -2345, BatteryPowerW: -2000, BatterySoCPct: 20.1, BatteryTempC: -5.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got, err := SungrowHybrid.Decode(tt.in)
			is.NoErr(err)
			is.Equal(got, tt.want)
			back, err := SungrowHybrid.Decode(SungrowHybrid.Encode(got))
			is.NoErr(err)
			is.Equal(back, tt.want) // the emulator's direction agrees
		})
	}
}

func TestDecodeRefusesAHalfReading(t *testing.T) {
	is := is.New(t)
	w := words(StateCharging, 1, 0, 1, 0, 1, 0, 1, 1, 1)
	delete(w, 13022)
	_, err := SungrowHybrid.Decode(w)
	is.True(err != nil)
	w = words(StateCharging|StateDischarging, 1, 0, 1, 0, 1, 0, 1, 1, 1)
	_, err = SungrowHybrid.Decode(w)
	is.True(err != nil)
}

func TestBlocksReadTheMapInTwoRequests(t *testing.T) {
	is := is.New(t)
	is.Equal(SungrowHybrid.Blocks(), []Block{{4989, 29}, {13000, 25}})
}

func sample(i int) telemetry.Sample {
	return telemetry.Sample{DeviceID: "d", TS: time.Date(2026, 2, 15, 12, 0, i, 0, time.UTC), PVPowerW: float64(i), SampleCount: 1}
}

func TestSpoolSurvivesReopenAndDropsTheOldest(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := OpenSpool(path, 3)
	is.NoErr(err)
	for i := range 5 {
		_, err := s.Put(sample(i))
		is.NoErr(err)
	}
	is.Equal(s.Depth(), 3)
	// A reopen sees exactly what was committed: the file, not memory, is the spool.
	is.NoErr(s.Close())
	s, err = OpenSpool(path, 3)
	is.NoErr(err)
	defer s.Close()
	is.Equal(s.Depth(), 3)
	rs, err := s.Oldest(10)
	is.NoErr(err)
	is.Equal(len(rs), 3)
	is.Equal(rs[0].Sample.PVPowerW, 2.0) // 0 and 1 were dropped
	is.Equal(rs[2].Sample.PVPowerW, 4.0)
	is.NoErr(s.Remove(rs[:2]))
	is.Equal(s.Depth(), 1)
	is.Equal(s.OldestTime(), sample(4).TS)
}

// ingestStub answers POST /v1/ingest by a rule per batch and records what it took.
type ingestStub struct {
	mu     sync.Mutex
	answer func(n int, samples []telemetry.Sample) (int, http.Header)
	took   []float64
	calls  int
}

func (s *ingestStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ Samples []telemetry.Sample }
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	status, h := s.answer(s.calls, body.Samples)
	for k, v := range h {
		w.Header()[k] = v
	}
	if status == http.StatusOK {
		for _, x := range body.Samples {
			s.took = append(s.took, x.PVPowerW)
		}
	}
	w.WriteHeader(status)
	io.WriteString(w, `{"detail":"because"}`)
}

func spooled(n int) []SpooledReading {
	out := make([]SpooledReading, n)
	for i := range out {
		out[i] = SpooledReading{Key: uint64(i + 1), Sample: sample(i)}
	}
	return out
}

func TestDeliverClassifiesAnswers(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		answer  func(int, []telemetry.Sample) (int, http.Header)
		removed int
		took    int
		retry   bool
		after   time.Duration
		refused bool
	}{
		{"200 removes all", func(int, []telemetry.Sample) (int, http.Header) { return 200, nil }, 4, 4, false, 0, false},
		{"503 keeps all", func(int, []telemetry.Sample) (int, http.Header) { return 503, nil }, 0, 0, true, 0, false},
		{"429 keeps all and honours Retry-After", func(int, []telemetry.Sample) (int, http.Header) {
			return 429, http.Header{"Retry-After": {"7"}}
		}, 0, 0, true, 7 * time.Second, false},
		{"401 keeps all", func(int, []telemetry.Sample) (int, http.Header) { return 401, nil }, 0, 0, false, 0, true},
		{"403 keeps all", func(int, []telemetry.Sample) (int, http.Header) { return 403, nil }, 0, 0, false, 0, true},
		{"413 splits until accepted", func(_ int, s []telemetry.Sample) (int, http.Header) {
			if len(s) > 1 {
				return 413, nil
			}
			return 200, nil
		}, 4, 4, false, 0, false},
		{"422 drops only the bad reading", func(_ int, s []telemetry.Sample) (int, http.Header) {
			for _, x := range s {
				if x.PVPowerW == 2 {
					return 422, nil
				}
			}
			return 200, nil
		}, 4, 3, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			stub := &ingestStub{answer: tt.answer}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			u := NewUploader(srv.URL, "tok", 5*time.Second, logger)
			done, err := u.Deliver(context.Background(), "d", spooled(4))
			is.Equal(len(done), tt.removed)
			is.Equal(len(stub.took), tt.took)
			var retry *RetryError
			var refused *RefusedError
			is.Equal(errors.As(err, &retry), tt.retry)
			is.Equal(errors.As(err, &refused), tt.refused)
			if tt.retry {
				is.Equal(retry.After, tt.after)
			}
		})
	}
}

func TestDeliverNetworkErrorKeepsAll(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there now
	u := NewUploader(srv.URL, "tok", time.Second, slog.New(slog.DiscardHandler))
	done, err := u.Deliver(context.Background(), "d", spooled(2))
	is.Equal(len(done), 0)
	var retry *RetryError
	is.True(errors.As(err, &retry))
	is.Equal(retry.Status, "network")
}
