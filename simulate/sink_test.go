package simulate_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

const (
	device = "inverter-sim"
	token  = "sim-token"
)

var day = time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)

// newGenerator makes one day at one sample a minute: 1440 samples, two HTTP batches.
func newGenerator(t *testing.T) *simulate.Generator {
	t.Helper()
	g, err := simulate.New(simulate.Config{
		DeviceID: device, Start: day, End: day.Add(24 * time.Hour), Interval: time.Minute,
		Seed: 1, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func countRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM sungrow_samples WHERE device_id = $1", device).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// apiServer runs the real HTTP API on d, with a gate in front that can answer for it.
func apiServer(t *testing.T, d *testenv.DB, gate func(calls int64, w http.ResponseWriter) bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	api := httpapi.NewServer(httpapi.Deps{
		Logger:               slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Tokens:               map[string]string{token: device},
		Samples:              telemetry.NewStore(d.Pool),
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
	})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if gate != nil && gate(n, w) {
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func fastSink(url, tok string) *simulate.HTTPSink {
	s := simulate.NewHTTPSink(url, tok, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	s.BaseDelay, s.MaxDelay, s.MaxAttempts = time.Millisecond, 5*time.Millisecond, 4
	return s
}

func TestHTTPSinkRetriesAndStoresEverySample(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	// The first request meets a 503 and the third a 429; both batches still land.
	srv, calls := apiServer(t, d, func(n int64, w http.ResponseWriter) bool {
		switch n {
		case 1:
			http.Error(w, `{"detail":"database restarting"}`, http.StatusServiceUnavailable)
			return true
		case 3:
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"detail":"slow down"}`, http.StatusTooManyRequests)
			return true
		}
		return false
	})

	g := newGenerator(t)
	var batches int
	res, err := simulate.Run(context.Background(), g, fastSink(srv.URL, token), 1000, func(simulate.Result) { batches++ })
	is.NoErr(err)
	is.Equal(res.Samples, 1440)
	is.Equal(res.Inserted, int64(1440))
	is.Equal(batches, 2)
	is.Equal(calls.Load(), int64(4)) // two batches, each retried once
	is.Equal(countRows(t, d.Pool), 1440)

	// What went over the wire is what the generator made.
	latest, err := telemetry.NewStore(d.Pool).Latest(context.Background(), device)
	is.NoErr(err)
	want := lastSample(t)
	is.True(latest.TS.Equal(want.TS))
	is.Equal(latest.PVPowerW, want.PVPowerW)
	is.Equal(latest.BatterySoCPct, want.BatterySoCPct)
	is.Equal(*latest.PVDailyKWh, *want.PVDailyKWh)

	// Sending it all again stores nothing twice.
	res, err = simulate.Run(context.Background(), newGenerator(t), fastSink(srv.URL, token), 1000, nil)
	is.NoErr(err)
	is.Equal(res.Inserted, int64(0))
	is.Equal(countRows(t, d.Pool), 1440)
}

func lastSample(t *testing.T) telemetry.Sample {
	g := newGenerator(t)
	var last telemetry.Sample
	for buf := g.Next(nil, 5000); len(buf) > 0; buf = g.Next(buf, 5000) {
		last = buf[len(buf)-1]
	}
	return last
}

func TestHTTPSinkRetriesAfterAConnectionDrops(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	// The first request's connection is cut before any answer: a network error.
	srv, calls := apiServer(t, d, func(n int64, w http.ResponseWriter) bool {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return false
			}
			conn.Close()
			return true
		}
		return false
	})
	res, err := simulate.Run(context.Background(), newGenerator(t), fastSink(srv.URL, token), 1000, nil)
	is.NoErr(err)
	is.Equal(res.Inserted, int64(1440))
	is.Equal(calls.Load(), int64(3))
	is.Equal(countRows(t, d.Pool), 1440)
}

func TestHTTPSinkStopsOnAClientError(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv, calls := apiServer(t, d, nil)

	res, err := simulate.Run(context.Background(), newGenerator(t), fastSink(srv.URL, "wrong-token"), 1000, nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "401"))                  // says what the server said
	is.True(strings.Contains(err.Error(), "--token"))              // and what to check
	is.True(strings.Contains(err.Error(), "2026-02-10T00:00:00Z")) // and where it stopped
	is.Equal(calls.Load(), int64(1))                               // a 401 is not retried
	is.Equal(res.Samples, 0)
	is.Equal(countRows(t, d.Pool), 0)
}

func TestHTTPSinkGivesUpAfterMaxAttemptsWithoutSkipping(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	// The first batch goes through; then the server fails for good.
	srv, calls := apiServer(t, d, func(n int64, w http.ResponseWriter) bool {
		if n > 1 {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	res, err := simulate.Run(context.Background(), newGenerator(t), fastSink(srv.URL, token), 1000, nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "gave up after 4 attempts"))
	is.True(strings.Contains(err.Error(), "502"))
	is.Equal(calls.Load(), int64(5))
	is.Equal(res.Samples, 1000) // the first batch is stored, the second is reported, not skipped
	is.Equal(countRows(t, d.Pool), 1000)
}

func TestDBSinkIsIdempotent(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)

	res, err := simulate.Run(context.Background(), newGenerator(t), store, 500, nil)
	is.NoErr(err)
	is.Equal(res.Inserted, int64(1440))
	is.Equal(countRows(t, d.Pool), 1440)

	res, err = simulate.Run(context.Background(), newGenerator(t), store, 500, nil)
	is.NoErr(err)
	is.Equal(res.Samples, 1440)
	is.Equal(res.Inserted, int64(0)) // a second run changes nothing
	is.Equal(countRows(t, d.Pool), 1440)
}
