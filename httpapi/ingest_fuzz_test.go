package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// fuzzStore keeps what the handler would have stored, to check it.
type fuzzStore struct {
	mu      sync.Mutex
	samples []telemetry.Sample
	aside   []telemetry.SetAside
}

func (s *fuzzStore) Insert(_ context.Context, _ string, samples []telemetry.Sample) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples[:0], samples...)
	return int64(len(samples)), nil
}

func (s *fuzzStore) InsertSettingAside(ctx context.Context, device string, samples []telemetry.Sample,
	aside []telemetry.SetAside, _ time.Time) (int64, error) {
	s.mu.Lock()
	s.aside = append(s.aside[:0], aside...)
	s.mu.Unlock()
	return s.Insert(ctx, device, samples)
}

func (s *fuzzStore) Latest(context.Context, string) (telemetry.Sample, error) {
	return telemetry.Sample{}, telemetry.ErrNotFound
}

// FuzzIngestDecode throws arbitrary bodies at POST /v1/ingest (decoder, validator and
// handler): it must never panic, answer only 200, 403, 413, 415 or 422, and answer 200
// only when the body is one well-formed JSON object whose samples are all well formed;
// a 200 stores exactly the plausible samples and sets aside exactly the implausible
// ones, as an independent reading of the body with encoding/json judges them. The
// seed corpus in testdata/fuzz/FuzzIngestDecode runs with every `go test`.
func FuzzIngestDecode(f *testing.F) {
	const fuzzDevice = "inverter-01"
	now := time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)
	store := &fuzzStore{}
	handler := NewServer(Deps{
		Logger:               slog.New(slog.DiscardHandler),
		Tokens:               map[string]string{"tok": fuzzDevice},
		Samples:              store,
		MaxRequestBytes:      64 << 10,
		MaxSamplesPerRequest: 50,
		Now:                  func() time.Time { return now },
	})
	f.Add([]byte(`{"samples":[{"device_id":"inverter-01","ts":"2026-02-15T08:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	f.Add([]byte(`{"samples":[]}`))
	f.Add([]byte(`{"samples":[{"device_id":"inverter-02"}]}`))
	f.Add([]byte(`{"samples":[{"device_id":"inverter-01","ts":"1970-01-01T00:00:10Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":255,"load_power_w":1,"export_power_w":0,"sample_count":0},{"device_id":"inverter-01","ts":"2026-02-15T08:00:05Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		store.mu.Lock()
		store.samples = store.samples[:0]
		store.aside = store.aside[:0]
		store.mu.Unlock()
		handler.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusForbidden, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusOK {
			return
		}
		// A 200: the body must be JSON that encoding/json agrees is one object with a
		// list of samples, and every sample that reached the store must be valid.
		if !json.Valid(body) {
			t.Fatalf("200 for invalid JSON %q", body)
		}
		// (A map, not a struct: encoding/json matches struct fields case-insensitively.)
		var top map[string]json.RawMessage
		var doc struct{ Samples []json.RawMessage }
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatalf("200 for %q, which is not an object: %v", body, err)
		}
		if err := json.Unmarshal(top["samples"], &doc.Samples); err != nil || doc.Samples == nil {
			t.Fatalf("200 for %q, which is not {\"samples\": [...]}: %v", body, err)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		var plausible, implausible []time.Time // the ts of each, in body order
		for i, raw := range doc.Samples {
			fields := map[string]any{}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&fields); err != nil {
				t.Fatalf("200 for sample %d that is not an object: %q", i, raw)
			}
			for _, name := range []string{"device_id", "ts", "pv_power_w", "battery_power_w", "battery_soc_pct", "load_power_w", "export_power_w"} {
				if fields[name] == nil {
					t.Fatalf("200 for sample %d without %s: %q", i, name, raw)
				}
			}
			tsText, _ := fields["ts"].(string)
			ts, err := time.Parse(time.RFC3339Nano, tsText)
			if err != nil {
				t.Fatalf("200 for sample %d with ts %q: %v", i, tsText, err)
			}
			num := func(name string, def float64) float64 {
				n, ok := fields[name].(json.Number)
				if !ok {
					return def
				}
				v, _ := n.Float64()
				return v
			}
			soc, count := num("battery_soc_pct", 50), num("sample_count", 1)
			if ts.Before(time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)) || ts.After(now.Add(24*time.Hour)) ||
				soc < 0 || soc > 100 || count < 1 {
				implausible = append(implausible, ts)
			} else {
				plausible = append(plausible, ts)
			}
		}
		if len(store.samples) != len(plausible) || len(store.aside) != len(implausible) {
			t.Fatalf("200 storing %d and setting aside %d, want %d and %d, for %q",
				len(store.samples), len(store.aside), len(plausible), len(implausible), body)
		}
		for i, s := range store.samples {
			finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
			ok := s.DeviceID == fuzzDevice && s.TS.Equal(plausible[i]) && !s.TS.After(now.Add(24*time.Hour)) &&
				finite(s.PVPowerW) && finite(s.BatteryPowerW) && finite(s.LoadPowerW) && finite(s.ExportPowerW) &&
				s.BatterySoCPct >= 0 && s.BatterySoCPct <= 100 && s.SampleCount >= 1 &&
				(s.PVDailyKWh == nil || finite(*s.PVDailyKWh)) && (s.BatteryTempC == nil || finite(*s.BatteryTempC))
			if !ok {
				t.Fatalf("200 storing invalid sample %d %+v from %q", i, s, body)
			}
		}
		for i, a := range store.aside {
			if !a.TS.Equal(implausible[i]) || len(a.Problems) == 0 || !json.Valid(a.Sample) {
				t.Fatalf("200 setting aside %+v as sample %d of %q", a, i, body)
			}
		}
		var answer struct {
			Inserted    int64             `json:"inserted"`
			Quarantined int               `json:"quarantined"`
			Problems    map[string]string `json:"problems"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.Quarantined != len(implausible) ||
			(len(implausible) > 0) != (len(answer.Problems) > 0) {
			t.Fatalf("200 answering %s for %q", rec.Body, body)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	})
}
