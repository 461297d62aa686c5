package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sungrow/sungrow/alerts"
	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// dashboardServer is the whole API as serve wires it, over the test's database, for
// device in zone loc on the clock now: the in-process realtime cache (5 s, as
// CACHE_TTL_S defaults; its TTL is wall-clock time, which no calendar depends on) and
// the live stream's hub.
// The Date header says now too: the page takes the server's time from it.
func dashboardServer(t *testing.T, d *testenv.DB, store *telemetry.Store, device string, loc *time.Location,
	now func() time.Time) http.Handler {
	t.Helper()
	svc, _, err := series.Open(context.Background(), d.Pool, loc)
	if err != nil {
		t.Fatalf("open series: %v", err)
	}
	hub := liveHub(t, d, store)
	api := httpapi.NewServer(httpapi.Deps{
		Logger:               discardLogger(),
		Tokens:               map[string]string{token: device},
		Samples:              store,
		Quarantine:           store,
		Alerts:               alerts.NewStore(d.Pool, now),
		Cache:                cache.NewMemory(cache.Options{TTL: 5 * time.Second, Logger: discardLogger()}),
		Series:               svc,
		Now:                  now,
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Stored:               []httpapi.StoredListener{hub},
		Stream:               hub,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", now().UTC().Format(http.TimeFormat)) // net/http keeps a Date set
		api.ServeHTTP(w, r)
	})
}
