package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// dashboardServer is the whole API as serve wires it, over the test's database: the
// in-process realtime cache (5 s, as CACHE_TTL_S defaults), series in UTC and the
// live stream's hub.
func dashboardServer(t *testing.T, d *testenv.DB, store *telemetry.Store) http.Handler {
	t.Helper()
	svc, _, err := series.Open(context.Background(), d.Pool, time.UTC)
	if err != nil {
		t.Fatalf("open series: %v", err)
	}
	hub := liveHub(t, d, store)
	return httpapi.NewServer(httpapi.Deps{
		Logger:               discardLogger(),
		Tokens:               map[string]string{token: device},
		Samples:              store,
		Cache:                cache.NewMemory(cache.Options{TTL: 5 * time.Second, Logger: discardLogger()}),
		Series:               svc,
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Stored:               []httpapi.StoredListener{hub},
		Stream:               hub,
	})
}
