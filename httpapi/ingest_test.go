package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

const (
	token  = "test-token"
	device = "inverter-01"
)

// fixedNow pins the clock of ingest validation.
var fixedNow = time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)

func newServer(t testing.TB, pool *pgxpool.Pool, tweak ...func(*httpapi.Deps)) *httptest.Server {
	t.Helper()
	store := telemetry.NewStore(pool)
	deps := httpapi.Deps{
		Logger:               slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Tokens:               map[string]string{token: device, "other-token": "inverter-02"},
		Samples:              store,
		Quarantine:           store,
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Now:                  func() time.Time { return fixedNow },
	}
	for _, f := range tweak {
		f(&deps)
	}
	srv := httptest.NewServer(httpapi.NewServer(deps))
	t.Cleanup(srv.Close)
	return srv
}

// sampleJSON returns a valid sample of the test device, i seconds after 08:00.
func sampleJSON(i int) map[string]any {
	return map[string]any{
		"device_id":       device,
		"ts":              fixedNow.Add(-4*time.Hour + time.Duration(i)*5*time.Second).Format(time.RFC3339),
		"pv_power_w":      1000.5 + float64(i),
		"pv_daily_kwh":    1.25,
		"battery_power_w": -250.0,
		"battery_soc_pct": 72.5,
		"battery_temp_c":  nil,
		"load_power_w":    800.0,
		"export_power_w":  -50.0,
	}
}

func batch(from, to int) map[string]any {
	samples := []map[string]any{}
	for i := from; i < to; i++ {
		samples = append(samples, sampleJSON(i))
	}
	return map[string]any{"samples": samples}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, url, tok string, body any) response {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		raw, err = json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/ingest", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	data, _ := io.ReadAll(res.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("response is not JSON: %q", data)
		}
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func countRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM sungrow_samples").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestCountsNewRowsAndIsIdempotent(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)

		res := post(t, srv.URL, token, batch(0, 10))
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["inserted"], 10.0)

		res = post(t, srv.URL, token, batch(0, 10)) // the same batch again
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["inserted"], 0.0)

		res = post(t, srv.URL, token, batch(5, 15)) // half old, half new
		is.Equal(res.body["inserted"], 5.0)

		res = post(t, srv.URL, token, map[string]any{"samples": []any{}})
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["inserted"], 0.0)
		is.Equal(countRows(t, d.Pool), 15)

		latest, err := telemetry.NewStore(d.Pool).Latest(context.Background(), device)
		is.NoErr(err)
		is.Equal(latest.PVPowerW, 1014.5)
		is.Equal(*latest.PVDailyKWh, 1.25)
		is.Equal(latest.BatteryTempC, nil) // null stays null
		is.Equal(latest.SampleCount, int32(1))
		is.True(latest.TS.Equal(fixedNow.Add(-4*time.Hour + 14*5*time.Second)))
	})
}

func TestIngestDuplicateInOneBatchIsStoredOnce(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)
		first, again := sampleJSON(1), sampleJSON(1)
		again["pv_power_w"] = 1.0
		res := post(t, srv.URL, token, map[string]any{"samples": []any{first, again}})
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["inserted"], 1.0)
		latest, err := telemetry.NewStore(d.Pool).Latest(context.Background(), device)
		is.NoErr(err)
		is.Equal(latest.PVPowerW, 1001.5) // the first wins, nothing is overwritten
	})
}

func TestIngestConcurrentOverlappingBatchesStoreEachSampleOnce(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)
		// Two clients post overlapping ranges in many small batches at once.
		var mu sync.Mutex
		var total float64
		var wg sync.WaitGroup
		for c := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range 10 {
					from := c*50 + b*10 // client 0: 0..99, client 1: 50..149
					res := post(t, srv.URL, token, batch(from, from+10))
					if res.status != http.StatusOK {
						t.Errorf("status %d: %v", res.status, res.body)
						return
					}
					mu.Lock()
					total += res.body["inserted"].(float64)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		is.Equal(total, 150.0)
		is.Equal(countRows(t, d.Pool), 150)
	})
}

// TestIngestRejectsMalformedInputAndWritesNothing: a malformed batch is refused whole,
// an implausible sample beside the malformed one included (quarantine_test.go has the
// implausible ones that are set aside).
func TestIngestRejectsMalformedInputAndWritesNothing(t *testing.T) {
	with := func(field string, value any) map[string]any {
		s := sampleJSON(0)
		if value == nil {
			delete(s, field)
		} else {
			s[field] = value
		}
		return map[string]any{"samples": []any{sampleJSON(1), s}}
	}
	tests := []struct {
		name   string
		body   any
		status int
		detail string // a part of the detail
	}{
		{"malformed JSON", `{"samples": [`, 422, "malformed JSON"},
		{"duplicate key", `{"samples": [], "samples": []}`, 422, "malformed JSON"},
		{"not an object", `[1,2]`, 422, "body"},
		{"trailing data", `{"samples": []} {}`, 422, "body"},
		{"samples missing", `{}`, 422, "samples"},
		{"samples not a list", `{"samples": 3}`, 422, "samples"},
		{"sample not an object", `{"samples": [3]}`, 422, "samples[0]"},
		{"wrong type", with("pv_power_w", "1200"), 422, "samples[1].pv_power_w"},
		{"huge number", `{"samples": [{"device_id": "inverter-01", "ts": "2026-02-15T08:00:00Z", "pv_power_w": 1e999, "battery_power_w": 0, "battery_soc_pct": 50, "load_power_w": 0, "export_power_w": 0}]}`, 422, "samples[0].pv_power_w"},
		{"missing required field", with("load_power_w", nil), 422, "samples[1].load_power_w"},
		{"missing ts", with("ts", nil), 422, "samples[1].ts"},
		{"soc not a number", with("battery_soc_pct", true), 422, "samples[1].battery_soc_pct"},
		{"sample_count fractional", with("sample_count", 1.5), 422, "samples[1].sample_count"},
		{"sample_count over int32", with("sample_count", 1<<31), 422, "samples[1].sample_count"},
		{"sample_count a string", with("sample_count", "1"), 422, "samples[1].sample_count"},
		{"empty device_id", with("device_id", ""), 422, "samples[1].device_id"},
		{"ts without offset", with("ts", "2026-02-15T08:00:00"), 422, "samples[1].ts"},
		{"ts not a time", with("ts", "yesterday"), 422, "samples[1].ts"},
		{"ts a number", with("ts", 1771142400), 422, "samples[1].ts"},
		{"malformed beside an implausible one", map[string]any{"samples": []any{
			with("ts", "1970-01-01T00:00:05Z")["samples"].([]any)[1], with("pv_power_w", nil)["samples"].([]any)[1]}},
			422, "samples[1].pv_power_w"},
		{"another device", with("device_id", "inverter-02"), 403, "samples[1].device_id"},
		{"too many samples", batch(0, 1001), 413, "1000 samples"},
		{"non-finite number", `{"samples": [{"device_id": "inverter-01", "ts": "1970-01-01T00:00:00Z", "pv_power_w": 1, "battery_power_w": 0, "battery_soc_pct": 50, "load_power_w": 0, "export_power_w": -1e400}]}`, 422, "samples[0].export_power_w"},
	}
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		srv := newServer(t, d.Pool)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				res := post(t, srv.URL, token, tt.body)
				is.Equal(res.status, tt.status)
				detail, _ := res.body["detail"].(string)
				is.True(strings.Contains(detail, tt.detail)) // the detail names the field
				is.Equal(countRows(t, d.Pool), 0)            // nothing written
				is.Equal(countQuarantine(t, d.Pool), 0)      // nothing set aside either
			})
		}
	})
}

func TestIngestLimitsAndContentType(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.MaxRequestBytes = 2048 })

	t.Run("body over the limit is 413", func(t *testing.T) {
		is := is.New(t)
		res := post(t, srv.URL, token, batch(0, 50))
		is.Equal(res.status, http.StatusRequestEntityTooLarge)
	})
	t.Run("streamed body over the limit is 413", func(t *testing.T) {
		is := is.New(t)
		// No Content-Length: the server must stop reading at the limit, not buffer it all.
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte(`{"samples": [`))
			for i := 0; i < 100000; i++ {
				if _, err := fmt.Fprintf(pw, "%q,", strings.Repeat("x", 100)); err != nil {
					return // the server hung up, as it should
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res := do(t, req)
		is.Equal(res.status, http.StatusRequestEntityTooLarge)
		pr.Close()
	})
	t.Run("non-JSON content type is 415", func(t *testing.T) {
		is := is.New(t)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", strings.NewReader(`{"samples":[]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/plain")
		is.Equal(do(t, req).status, http.StatusUnsupportedMediaType)
	})
	t.Run("JSON with charset is fine", func(t *testing.T) {
		is := is.New(t)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", strings.NewReader(`{"samples":[]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		is.Equal(do(t, req).status, http.StatusOK)
	})
	is.New(t).Equal(countRows(t, d.Pool), 0)
}

func TestIngestAuth(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool)
	for name, header := range map[string]string{
		"no header":     "",
		"not bearer":    "Basic " + token,
		"empty bearer":  "Bearer ",
		"unknown token": "Bearer nope",
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", strings.NewReader(`{"samples":[]}`))
			req.Header.Set("Content-Type", "application/json")
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			res := do(t, req)
			is.Equal(res.status, http.StatusUnauthorized)
			is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer"))
			is.True(res.body["detail"] != "")
		})
	}
	t.Run("the other device's token is 403", func(t *testing.T) {
		is := is.New(t)
		res := post(t, srv.URL, "other-token", batch(0, 1))
		is.Equal(res.status, http.StatusForbidden)
		is.Equal(countRows(t, d.Pool), 0)
	})
}

func TestIngestDatabaseDownIs503(t *testing.T) {
	is := is.New(t)
	// Nothing listens on port 1: every query fails to connect.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	is.NoErr(err)
	defer pool.Close()
	srv := newServer(t, pool)
	res := post(t, srv.URL, token, batch(0, 3))
	is.Equal(res.status, http.StatusServiceUnavailable)
	is.True(strings.Contains(res.body["detail"].(string), "database"))
	is.Equal(res.header.Get("Retry-After"), "5")
}

func TestHealth(t *testing.T) {
	is := is.New(t)
	srv := newServer(t, nil)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/health", nil)
	res := do(t, req)
	is.Equal(res.status, http.StatusOK)
	is.Equal(res.body["status"], "ok")
}

// storedLog records what ingest tells its StoredListeners.
type storedLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *storedLog) Stored(deviceID string, newest time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, deviceID+" "+newest.UTC().Format(time.RFC3339))
}

func (l *storedLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func TestIngestTellsStoredListenersOnlyOfBatchesThatInserted(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	a, b := &storedLog{}, &storedLog{}
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.Stored = []httpapi.StoredListener{a, b} })
	at := func(i int) string {
		return device + " " + fixedNow.Add(-4*time.Hour+time.Duration(i)*5*time.Second).UTC().Format(time.RFC3339)
	}

	is.Equal(post(t, srv.URL, token, batch(0, 10)).status, http.StatusOK)
	is.Equal(post(t, srv.URL, token, batch(0, 10)).status, http.StatusOK)                       // nothing new: no call
	is.Equal(post(t, srv.URL, token, map[string]any{"samples": []any{}}).status, http.StatusOK) // empty: no call
	is.Equal(post(t, srv.URL, token, batch(20, 25)).status, http.StatusOK)
	is.Equal(post(t, srv.URL, token, map[string]any{"samples": []any{sampleJSON(99)}}).status, http.StatusOK)
	is.Equal(post(t, srv.URL, token, batch(15, 18)).status, http.StatusOK) // an older batch is news too
	is.Equal(post(t, srv.URL, token, map[string]any{"samples": []any{sampleJSON(-1), "bad"}}).status, http.StatusUnprocessableEntity)

	want := []string{at(9), at(24), at(99), at(17)}
	is.Equal(a.get(), want)
	is.Equal(b.get(), want)
}
