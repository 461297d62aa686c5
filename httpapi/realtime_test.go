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
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

// rtNow pins the clock of ingest validation in the realtime tests.
var rtNow = time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)

// rtClock is the cache's clock: the in-process TTL and the back-off after a Redis
// failure move only when a test says so.
type rtClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *rtClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *rtClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// latestTracer counts the LatestSample queries the database receives; while gate is
// set, each one waits for it to close.
type latestTracer struct {
	latest atomic.Int64
	gate   atomic.Pointer[chan struct{}]
}

func (tr *latestTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, "-- name: LatestSample ") {
		tr.latest.Add(1)
		if g := tr.gate.Load(); g != nil {
			<-*g
		}
	}
	return ctx
}

func (tr *latestTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// rtEnv is one realtime test's server, with its own device and token so tests that run
// in parallel never share a Redis key.
type rtEnv struct {
	url, token, device string
	queries            *latestTracer
	clock              *rtClock
	cache              *cache.Realtime // nil: caching off
	redis              *redis.Client   // nil: in-process cache or none
	logs               *testenv.LogBuffer
	gets               atomic.Int64 // calls of the cache's Get
}

// countingCache counts the reads that reach the cache.
type countingCache struct {
	httpapi.RealtimeCache
	gets *atomic.Int64
}

func (c countingCache) Get(ctx context.Context, device string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	c.gets.Add(1)
	return c.RealtimeCache.Get(ctx, device, load)
}

type cacheKind string

const (
	redisCache  cacheKind = "redis"
	memoryCache cacheKind = "memory"
	noCache     cacheKind = "off"
)

var cacheKinds = []cacheKind{redisCache, memoryCache}

// newRealtimeEnv serves the API over a pool traced for LatestSample queries, replacing
// d.Pool (the TimescaleDB test server takes one connection at a time).
func newRealtimeEnv(t *testing.T, d *testenv.DB, kind cacheKind, ttl time.Duration, redisURL string) *rtEnv {
	t.Helper()
	tr := &latestTracer{}
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tr
	if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" {
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			return db.New(conn).SetSearchPath(ctx, sp)
		}
	}
	d.Pool.Close()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Pool = pool // closed by testenv's cleanup, before it drops the database
	t.Cleanup(pool.Close)

	e := &rtEnv{
		token:   testenv.UniqueName("tok"),
		device:  testenv.UniqueName("inverter"),
		queries: tr,
		clock:   &rtClock{t: time.Now()},
		logs:    &testenv.LogBuffer{},
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	opts := cache.Options{TTL: ttl, Logger: logger, Now: e.clock.Now}
	switch kind {
	case redisCache:
		if redisURL == "" {
			redisURL = testenv.RedisURL()
		}
		if e.cache, err = cache.NewRedis(redisURL, opts); err != nil {
			t.Fatal(err)
		}
		ropts, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		e.redis = redis.NewClient(ropts)
		t.Cleanup(func() { e.redis.Close() })
		t.Cleanup(func() { e.cache.Close() })
	case memoryCache:
		e.cache = cache.NewMemory(opts)
	}
	deps := httpapi.Deps{
		Logger:               logger,
		Tokens:               map[string]string{e.token: e.device, "other-" + e.token: e.device + "-other"},
		Samples:              telemetry.NewStore(pool),
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Now:                  func() time.Time { return rtNow },
	}
	if e.cache != nil {
		deps.Cache = countingCache{RealtimeCache: e.cache, gets: &e.gets}
	}
	srv := httptest.NewServer(httpapi.NewServer(deps))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// sample is a valid sample of the env's device, i steps of 5 s after 08:00.
func (e *rtEnv) sample(i int) map[string]any {
	return map[string]any{
		"device_id":       e.device,
		"ts":              rtNow.Add(-4*time.Hour + time.Duration(i)*5*time.Second).Format(time.RFC3339),
		"pv_power_w":      1000.0 + float64(i),
		"pv_daily_kwh":    2.5,
		"battery_power_w": -300.0,
		"battery_soc_pct": 64.0,
		"battery_temp_c":  nil,
		"load_power_w":    900.0,
		"export_power_w":  100.0,
		"sample_count":    3,
	}
}

// ingest posts the samples i of the env's device and checks they were stored.
func (e *rtEnv) ingest(t *testing.T, is ...int) {
	t.Helper()
	samples := make([]map[string]any, 0, len(is))
	for _, i := range is {
		samples = append(samples, e.sample(i))
	}
	raw, _ := json.Marshal(map[string]any{"samples": samples})
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/ingest", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("ingest: status %d: %s", res.StatusCode, body)
	}
}

type rtResponse struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// get asks for the realtime answer of device (the env's own when empty) with token.
func (e *rtEnv) get(t *testing.T, token, query string) rtResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/realtime"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return rtResponse{}
	}
	defer res.Body.Close()
	out := rtResponse{status: res.StatusCode, header: res.Header}
	out.raw, _ = io.ReadAll(res.Body)
	if err := json.Unmarshal(out.raw, &out.body); err != nil {
		t.Errorf("response is not JSON: %q", out.raw)
	}
	return out
}

// latest is a GET of the env's own device that must answer 200.
func (e *rtEnv) latest(t *testing.T) rtResponse {
	t.Helper()
	res := e.get(t, e.token, "?device_id="+e.device)
	if res.status != http.StatusOK {
		t.Fatalf("realtime: status %d: %s", res.status, res.raw)
	}
	return res
}

// wantSample checks the answer is sample i of the env's device, every field.
func (e *rtEnv) wantSample(t *testing.T, res rtResponse, i int) {
	t.Helper()
	is := is.NewRelaxed(t)
	want := e.sample(i)
	is.Equal(res.header.Get("Content-Type"), "application/json")
	is.Equal(len(res.body), len(want)) // every sample field, nothing else
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(res.body["ts"]))
	is.NoErr(err)
	is.True(ts.Equal(rtNow.Add(-4*time.Hour + time.Duration(i)*5*time.Second)))
	for k, v := range want {
		switch k {
		case "ts":
		case "sample_count":
			is.Equal(res.body[k], float64(v.(int)))
		default:
			is.Equal(res.body[k], v) // k
		}
	}
}

func TestRealtimeMissQueriesOnceAndStoresWithTTLThenHitsWithoutQuery(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		for _, kind := range cacheKinds {
			t.Run(string(kind), func(t *testing.T) {
				is := is.New(t)
				e := newRealtimeEnv(t, d, kind, 5*time.Second, "")
				e.ingest(t, 0, 2, 1) // the newest is 2, though not sent last

				first := e.latest(t)
				e.wantSample(t, first, 2)
				is.Equal(e.queries.latest.Load(), int64(1)) // a miss queries once

				if e.redis != nil {
					ctx := context.Background()
					ttl, err := e.redis.PTTL(ctx, cache.Key(e.device)).Result()
					is.NoErr(err)
					is.True(ttl > 4*time.Second && ttl <= 5*time.Second) // stored with the TTL
					stored, err := e.redis.Get(ctx, cache.Key(e.device)).Bytes()
					is.NoErr(err)
					is.Equal(string(stored), string(first.raw)) // the JSON answer itself
				}

				for range 3 {
					again := e.latest(t)
					is.Equal(string(again.raw), string(first.raw))
				}
				is.Equal(e.queries.latest.Load(), int64(1)) // hits asked no database
			})
		}
	})
}

func TestRealtimeExpiry(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		for _, kind := range cacheKinds {
			t.Run(string(kind), func(t *testing.T) {
				is := is.New(t)
				ttl := 5 * time.Second
				if kind == redisCache {
					ttl = time.Second // Redis keeps real time
				}
				e := newRealtimeEnv(t, d, kind, ttl, "")
				// hit asserts a second read of what was cached at cachedAt asked no
				// database; in Redis only while the TTL lasts, which a loaded machine
				// can outlast between two requests.
				hit := func(cachedAt time.Time, want int64) {
					t.Helper()
					if kind == memoryCache || time.Since(cachedAt) < ttl {
						is.Equal(e.queries.latest.Load(), want)
					}
				}
				e.ingest(t, 7)
				cachedAt := time.Now()
				e.wantSample(t, e.latest(t), 7)
				e.latest(t)
				hit(cachedAt, 1)

				if kind == redisCache {
					awaitGone(t, e.redis, cache.Key(e.device))
				} else {
					e.clock.Advance(ttl - time.Millisecond)
					e.latest(t)
					is.Equal(e.queries.latest.Load(), int64(1)) // not yet expired
					e.clock.Advance(time.Millisecond)
				}
				cachedAt = time.Now()
				e.wantSample(t, e.latest(t), 7)
				is.Equal(e.queries.latest.Load(), int64(2)) // expired: asked again
				e.latest(t)
				hit(cachedAt, 2) // and cached again
			})
		}
	})
}

func TestRealtimeConcurrentMissesQueryOnce(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		for _, kind := range cacheKinds {
			t.Run(string(kind), func(t *testing.T) {
				is := is.New(t)
				e := newRealtimeEnv(t, d, kind, 5*time.Second, "")
				e.ingest(t, 3)

				// Hold the first query until all 100 requests have missed, so they
				// really are concurrent misses.
				gate := make(chan struct{})
				e.queries.gate.Store(&gate)
				const n = 100
				var wg sync.WaitGroup
				bodies := make([]string, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res := e.get(t, e.token, "?device_id="+e.device)
						if res.status != http.StatusOK {
							t.Errorf("status %d: %s", res.status, res.raw)
						}
						bodies[i] = string(res.raw)
					}()
				}
				// All have asked the cache; they miss, since nothing can be stored
				// while the one query waits.
				testenv.Await(t, "100 requests in the cache", 10*time.Second, func() bool { return e.gets.Load() == n })
				close(gate)
				wg.Wait()
				e.queries.gate.Store(nil)
				is.Equal(e.queries.latest.Load(), int64(1)) // one query for 100 misses
				for _, b := range bodies {
					is.Equal(b, bodies[0])
				}
			})
		}
	})
}

func TestRealtimeFreshIngestIsVisibleAtOnce(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		for _, kind := range cacheKinds {
			t.Run(string(kind), func(t *testing.T) {
				is := is.New(t)
				e := newRealtimeEnv(t, d, kind, time.Hour, "")
				e.ingest(t, 10)
				e.wantSample(t, e.latest(t), 10) // now cached for an hour

				e.ingest(t, 11)
				e.wantSample(t, e.latest(t), 11) // the ingest's newest, at once

				e.ingest(t, 4) // a backfill: older than what is shown
				e.wantSample(t, e.latest(t), 11)
				e.ingest(t, 11) // a re-sent sample inserts nothing and changes nothing
				e.wantSample(t, e.latest(t), 11)
				// One load after each ingest, the re-sent one too: a batch that inserts
				// nothing may have lost a race for its rows to one still invalidating.
				is.Equal(e.queries.latest.Load(), int64(4))
			})
		}
	})
}

func TestRealtimeWithoutCacheQueriesEveryTime(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	e := newRealtimeEnv(t, d, noCache, 0, "")
	e.ingest(t, 1)
	e.wantSample(t, e.latest(t), 1)
	e.wantSample(t, e.latest(t), 1)
	is.Equal(e.queries.latest.Load(), int64(2))
}

func TestRealtimeErrors(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		for _, kind := range append(cacheKinds, noCache) {
			t.Run(string(kind), func(t *testing.T) {
				is := is.New(t)
				e := newRealtimeEnv(t, d, kind, 5*time.Second, "")
				own := "?device_id=" + e.device

				res := e.get(t, "", own)
				is.Equal(res.status, http.StatusUnauthorized)
				is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer"))
				is.Equal(e.get(t, "wrong-token", own).status, http.StatusUnauthorized)

				res = e.get(t, e.token, "?device_id="+e.device+"-other")
				is.Equal(res.status, http.StatusForbidden)
				is.True(res.body["detail"] != "")

				res = e.get(t, e.token, "")
				is.Equal(res.status, http.StatusUnprocessableEntity)
				is.Equal(res.body["errors"].(map[string]any)["device_id"], "required")

				res = e.get(t, e.token, own)
				is.Equal(res.status, http.StatusNotFound)
				is.Equal(res.header.Get("Content-Type"), "application/problem+json")
				is.True(strings.Contains(res.body["detail"].(string), "no samples"))
				is.Equal(e.queries.latest.Load(), int64(1)) // only the 404 asked

				e.ingest(t, 5) // "no data" was not cached
				e.wantSample(t, e.latest(t), 5)
			})
		}
	})
}

func TestRealtimeRedisStoppedAnswersFromDatabaseAndResumes(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	r := testenv.StartRedis(t)
	ttl := 5 * time.Second
	e := newRealtimeEnv(t, d, redisCache, ttl, r.URL)
	e.ingest(t, 1)
	e.wantSample(t, e.latest(t), 1)
	e.latest(t)
	is.Equal(e.queries.latest.Load(), int64(1)) // cached in our Redis

	r.Stop()
	for i := range 5 {
		e.wantSample(t, e.latest(t), 1)
		is.Equal(e.queries.latest.Load(), int64(2+i)) // the database answers
	}
	e.ingest(t, 2) // its invalidation fails
	e.wantSample(t, e.latest(t), 2)
	is.Equal(strings.Count(e.logs.String(), "realtime cache unavailable"), 1) // bounded, not per request

	r.Start(t)
	e.wantSample(t, e.latest(t), 2)
	is.Equal(e.queries.latest.Load(), int64(8)) // still skipping Redis within the back-off
	e.clock.Advance(ttl)                        // a failed invalidation skips Redis for a TTL

	before := e.queries.latest.Load()
	e.wantSample(t, e.latest(t), 2)
	is.Equal(e.queries.latest.Load(), before+1)
	ttlLeft, err := e.redis.PTTL(context.Background(), cache.Key(e.device)).Result()
	is.NoErr(err)
	is.True(ttlLeft > 0) // stored again
	e.wantSample(t, e.latest(t), 2)
	is.Equal(e.queries.latest.Load(), before+1) // and served from Redis again
	is.True(strings.Contains(e.logs.String(), "realtime cache available again"))
}

func awaitGone(t *testing.T, c *redis.Client, key string) {
	t.Helper()
	testenv.Await(t, key+" to expire", 10*time.Second, func() bool {
		n, err := c.Exists(context.Background(), key).Result()
		return err == nil && n == 0
	})
}

// A Redis that accepts connections but never answers (here: a stopped process) costs
// one short timeout, after which the database answers and Redis is skipped.
func TestRealtimeRedisHangingAnswersFromDatabase(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	r := testenv.StartRedis(t)
	e := newRealtimeEnv(t, d, redisCache, 5*time.Second, r.URL)
	e.ingest(t, 1)
	e.wantSample(t, e.latest(t), 1)

	r.Pause(t)
	e.ingest(t, 2) // its invalidation times out
	for range 3 {
		e.wantSample(t, e.latest(t), 2)
	}
	is.Equal(e.queries.latest.Load(), int64(4))
	is.True(strings.Contains(e.logs.String(), "timeout"))
	r.Resume(t)
}
