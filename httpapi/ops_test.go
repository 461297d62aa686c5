package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/series"
)

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestReady(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	down, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	redisDown := func(context.Context) error { return errors.New("dial tcp 127.0.0.1:1: connection refused") }
	tests := []struct {
		name   string
		checks []httpapi.ReadyCheck
		status int
		names  []string // named in the detail
	}{
		{"all up", []httpapi.ReadyCheck{{Name: "database", Check: d.Pool.Ping}}, 200, nil},
		{"database down", []httpapi.ReadyCheck{{Name: "database", Check: down.Ping}}, 503, []string{"database"}},
		{"redis down", []httpapi.ReadyCheck{{Name: "database", Check: d.Pool.Ping}, {Name: "redis", Check: redisDown}}, 503, []string{"redis"}},
		{"both down", []httpapi.ReadyCheck{{Name: "database", Check: down.Ping}, {Name: "redis", Check: redisDown}}, 503, []string{"database", "redis"}},
		{"no device token", []httpapi.ReadyCheck{{Name: "database", Check: d.Pool.Ping},
			{Name: "device_tokens", Check: devices.Static(nil).CheckTokens, Public: true}}, 503, []string{"device_tokens"}},
		// A read replica down: shown with its state, and still ready (reads go to the primary).
		{"replica down", []httpapi.ReadyCheck{{Name: "database", Check: d.Pool.Ping},
			{Name: "replica1", Check: func(context.Context) error { return errors.New("down") }, Optional: true}}, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.Ready = tt.checks })
			res, body := get(t, srv.URL+"/ready", nil)
			is.Equal(res.StatusCode, tt.status)
			var doc struct {
				Detail string            `json:"detail"`
				Checks map[string]string `json:"checks"`
			}
			is.NoErr(json.Unmarshal([]byte(body), &doc))
			for _, name := range tt.names {
				is.True(strings.Contains(doc.Detail, name)) // the detail names it
				if name == "device_tokens" {                // a public check says why
					is.True(strings.Contains(doc.Checks[name], "nothing can authenticate"))
				} else {
					is.Equal(doc.Checks[name], "failed")
				}
				is.True(!strings.Contains(body, "127.0.0.1")) // no internals for an unauthenticated caller
			}
			if tt.status == 200 {
				is.True(strings.Contains(body, `"status":"ready"`))
			}
			for _, c := range tt.checks {
				if c.Optional {
					is.Equal(doc.Checks[c.Name], "down") // an optional check says its state
				}
			}
		})
	}
}

func TestMetricsCountRequestsAndIngestedRows(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	m := metrics.New()
	m.WatchPool(d.Pool)
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Metrics = m
		deps.Cache = cache.NewMemory(cache.Options{TTL: time.Minute})
	})

	res := post(t, srv.URL, token, batch(0, 3))
	is.Equal(res.status, 200)
	res = post(t, srv.URL, token, batch(0, 3)) // re-sent: received, not inserted
	is.Equal(res.status, 200)
	res = post(t, srv.URL, "nope", batch(0, 3))
	is.Equal(res.status, 401)
	for range 3 { // a miss, then two hits
		res, _ := get(t, srv.URL+"/v1/realtime?device_id="+device, map[string]string{"Authorization": "Bearer " + token})
		is.Equal(res.StatusCode, 200)
	}

	_, body := get(t, srv.URL+"/metrics", nil)
	for _, want := range []string{
		`sungrow_http_requests_total{method="POST",route="POST /v1/ingest",status="200"} 2`,
		`sungrow_http_requests_total{method="POST",route="POST /v1/ingest",status="401"} 1`,
		`sungrow_ingest_rows_inserted_total 3`,
		`sungrow_ingest_samples_received_total 6`,
		`sungrow_http_request_duration_seconds_count{method="POST",route="POST /v1/ingest"} 3`,
		`sungrow_db_pool_connections{state="max"}`,
		`sungrow_realtime_cache_requests_total{result="hit"} 2`,
		`sungrow_realtime_cache_requests_total{result="miss"} 1`,
		`go_goroutines`,
	} {
		is.True(strings.Contains(body, want)) // the scrape shows it
	}
}

func TestRequestIDs(t *testing.T) {
	srv := newServer(t, nil)
	t.Run("one is made", func(t *testing.T) {
		is := is.New(t)
		res, _ := get(t, srv.URL+"/health", nil)
		is.Equal(len(res.Header.Get("X-Request-ID")), 16)
	})
	t.Run("a sane one is kept", func(t *testing.T) {
		is := is.New(t)
		res, _ := get(t, srv.URL+"/health", map[string]string{"X-Request-ID": "lb-42.abc_DEF"})
		is.Equal(res.Header.Get("X-Request-ID"), "lb-42.abc_DEF")
	})
	t.Run("an unsafe one is replaced", func(t *testing.T) {
		is := is.New(t)
		for _, bad := range []string{"a b", "x\"y", strings.Repeat("a", 65), "é"} {
			res, _ := get(t, srv.URL+"/health", map[string]string{"X-Request-ID": bad})
			is.True(res.Header.Get("X-Request-ID") != bad)
			is.Equal(len(res.Header.Get("X-Request-ID")), 16)
		}
	})
}

func TestCORS(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	allowed := "https://dash.example.com"
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.CORSOrigins = []string{allowed} })
	preflight := func(origin, method string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/v1/realtime?device_id="+device, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	t.Run("allowed origin: preflight for GET passes", func(t *testing.T) {
		is := is.New(t)
		res := preflight(allowed, "GET")
		is.Equal(res.StatusCode, http.StatusNoContent)
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), allowed)
		is.True(strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization"))
		is.True(strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID")) // a stream resuming cross-origin
	})
	t.Run("allowed origin: GET carries the header", func(t *testing.T) {
		is := is.New(t)
		res, _ := get(t, srv.URL+"/health", map[string]string{"Origin": allowed})
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), allowed)
	})
	t.Run("ingest is not opened to browsers", func(t *testing.T) {
		is := is.New(t)
		res := preflight(allowed, "POST")
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "")
	})
	t.Run("other origin gets nothing", func(t *testing.T) {
		is := is.New(t)
		res := preflight("https://evil.example.com", "GET")
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "")
		res, _ = get(t, srv.URL+"/health", map[string]string{"Origin": "https://evil.example.com"})
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "")
	})
	t.Run("no allowlist, no headers", func(t *testing.T) {
		is := is.New(t)
		plain := newServer(t, d.Pool)
		res, _ := get(t, plain.URL+"/health", map[string]string{"Origin": allowed})
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "")
	})
}

func TestAccessLogHasOneLinePerRequestAndNoToken(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	var logs testenv.LogBuffer
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	post(t, srv.URL, token, batch(0, 2))
	post(t, srv.URL, "wrong-secret-token", batch(0, 2))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	is.Equal(len(lines), 2)
	for _, l := range lines {
		is.True(strings.Contains(l, `"msg":"request"`))
		is.True(strings.Contains(l, `"request_id":`))
	}
	is.True(!strings.Contains(logs.String(), token))
	is.True(!strings.Contains(logs.String(), "wrong-secret-token"))
}

// hangUpReader is a series reader whose client has gone away mid-query.
type hangUpReader struct{ cancel context.CancelFunc }

func (h hangUpReader) ParseDate(string, time.Time) (time.Time, error) { return time.Time{}, nil }
func (h hangUpReader) Series(ctx context.Context, _, _ string, _ time.Time) (series.Result, error) {
	h.cancel()
	<-ctx.Done()
	return series.Result{}, fmt.Errorf("read day series: %w", ctx.Err())
}

func TestClientHangingUpIsNotAServerError(t *testing.T) {
	is := is.New(t)
	var logs testenv.LogBuffer
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	handler := httpapi.NewServer(httpapi.Deps{
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
		Tokens:  map[string]string{token: device},
		Series:  hangUpReader{cancel: cancel},
		Metrics: m,
	})
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/series?device_id="+device+"&frame=day", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	is.Equal(rec.Code, 499)
	is.True(!strings.Contains(logs.String(), `"level":"ERROR"`)) // no error logged for it
}

// panicReader is a series reader with a bug.
type panicReader struct{}

func (panicReader) ParseDate(string, time.Time) (time.Time, error) { return time.Time{}, nil }
func (panicReader) Series(context.Context, string, string, time.Time) (series.Result, error) {
	var m map[string]int
	m["boom"]++ // a nil map write: a panic
	return series.Result{}, nil
}

func TestAHandlerPanicIsALogged500(t *testing.T) {
	is := is.New(t)
	var logs testenv.LogBuffer
	m := metrics.New()
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Tokens: map[string]string{token: device},
		Series: panicReader{}, Metrics: m,
	}))
	defer srv.Close()
	res, body := get(t, srv.URL+"/v1/series?device_id="+device+"&frame=day", map[string]string{"Authorization": "Bearer " + token})
	is.Equal(res.StatusCode, 500)
	is.True(strings.Contains(body, `"detail":"internal error"`))
	is.True(strings.Contains(logs.String(), "handler panicked"))
	is.True(strings.Contains(logs.String(), `"status":500`)) // the access log still has its line
	_, scrape := get(t, srv.URL+"/metrics", nil)
	is.True(strings.Contains(scrape, "sungrow_http_requests_in_flight 1")) // only the scrape itself
}

func TestUnroutedRequestsGetProblemDocuments(t *testing.T) {
	srv := newServer(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nope", 404},
		{"GET", "/favicon.ico", 404},
		{"POST", "/v1/realtime", 405},
		{"DELETE", "/v1/ingest", 405},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			is := is.New(t)
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			res := do(t, req)
			is.Equal(res.status, tt.status)
			is.Equal(res.header.Get("Content-Type"), "application/problem+json")
			is.True(res.body["detail"] != "")
		})
	}
}
