package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
)

func uniqueDevice() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "dev-" + hex.EncodeToString(b)
}

func caches(t *testing.T, ttl time.Duration) map[string]*Realtime {
	t.Helper()
	rc, err := NewRedis(testenv.RedisURL(), Options{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return map[string]*Realtime{"redis": rc, "memory": NewMemory(Options{TTL: ttl})}
}

// A load that read the database before an ingest committed must not leave its older
// answer in the cache after the ingest's invalidation, nor hand it to the reader who
// asked after the ingest.
func TestInvalidateDuringLoadIsNotUndone(t *testing.T) {
	for name, c := range caches(t, time.Hour) {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			device := uniqueDevice()
			var loads atomic.Int64
			inLoad, release := make(chan struct{}), make(chan struct{})
			load := func(context.Context) ([]byte, error) {
				if loads.Add(1) == 1 {
					close(inLoad)
					<-release // the ingest commits and invalidates meanwhile
					return []byte(`"old"`), nil
				}
				return []byte(`"new"`), nil
			}
			first := make(chan []byte)
			go func() {
				v, err := c.Get(ctx, device, load)
				if err != nil {
					t.Error(err)
				}
				first <- v
			}()
			<-inLoad
			c.Invalidate(ctx, device)
			close(release)
			is.Equal(string(<-first), `"new"`) // it loaded again, after the invalidation
			is.Equal(loads.Load(), int64(2))

			v, err := c.Get(ctx, device, func(context.Context) ([]byte, error) { return nil, errors.New("must be cached") })
			is.NoErr(err)
			is.Equal(string(v), `"new"`)
		})
	}
}

func TestLoadErrorsAreReturnedNotCached(t *testing.T) {
	for name, c := range caches(t, time.Hour) {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			device := uniqueDevice()
			notFound := errors.New("no data")
			_, err := c.Get(ctx, device, func(context.Context) ([]byte, error) { return nil, notFound })
			is.True(errors.Is(err, notFound))
			v, err := c.Get(ctx, device, func(context.Context) ([]byte, error) { return []byte("1"), nil })
			is.NoErr(err)
			is.Equal(string(v), "1")
		})
	}
}

// A caller who gives up does not cancel the load the others wait for.
func TestCallerCancelLeavesLoadToOthers(t *testing.T) {
	for name, c := range caches(t, time.Hour) {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			device := uniqueDevice()
			inLoad, release := make(chan struct{}), make(chan struct{})
			load := func(ctx context.Context) ([]byte, error) {
				close(inLoad)
				<-release
				return []byte("v"), ctx.Err()
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() {
				_, err := c.Get(ctx, device, load)
				done <- err
			}()
			<-inLoad
			second := make(chan []byte)
			go func() {
				v, _ := c.Get(context.Background(), device, load)
				second <- v
			}()
			cancel()
			is.True(errors.Is(<-done, context.Canceled))
			close(release)
			is.Equal(string(<-second), "v")
		})
	}
}

func TestRedisURLs(t *testing.T) {
	tests := []struct {
		url     string
		addrs   []string
		master  string
		cluster bool
		tls     bool
		db      int
		err     string
	}{
		{url: "redis://127.0.0.1:6379/2", addrs: []string{"127.0.0.1:6379"}, db: 2},
		{url: "rediss://user:pw@cache.example:6380", addrs: []string{"cache.example:6380"}, tls: true},
		{url: "redis://a:7000?addr=b:7000&addr=c:7000", addrs: []string{"a:7000", "b:7000", "c:7000"}},
		{url: "redis://a:7000?cluster=true", addrs: []string{"a:7000"}, cluster: true},
		{url: "redis://s1:26379?addr=s2:26379&master_name=mymaster", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster"},
		{url: "http://localhost:6379", err: "scheme"},
		{url: "redis://a:1?cluster=maybe", err: "cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			is := is.New(t)
			opts, err := universalOptions(tt.url)
			if tt.err != "" {
				is.True(err != nil && strings.Contains(err.Error(), tt.err))
				return
			}
			is.NoErr(err)
			is.Equal(opts.Addrs, tt.addrs)
			is.Equal(opts.MasterName, tt.master)
			is.Equal(opts.IsClusterMode, tt.cluster)
			is.Equal(opts.TLSConfig != nil, tt.tls)
			is.Equal(opts.DB, tt.db)
			is.Equal(opts.ReadTimeout, defaultIOTimeout) // short unless the URL says otherwise
			is.Equal(opts.DialTimeout, defaultDialTimeout)
			is.Equal(opts.MaxRetries, -1)
		})
	}
	is := is.New(t)
	opts, err := universalOptions("redis://a:1?read_timeout=2s")
	is.NoErr(err)
	is.Equal(opts.ReadTimeout, 2*time.Second)
	_, err = NewRedis("redis://user:s3cret@a:1/x", Options{TTL: time.Second})
	is.True(err != nil && !strings.Contains(err.Error(), "s3cret")) // no password in errors
}

// flakyBackend is the in-process backend with a switch that makes it fail, counting
// the calls it fails.
type flakyBackend struct {
	backend
	down  atomic.Bool
	calls atomic.Int64 // calls made while down
}

var errDown = errors.New("backend down")

func (f *flakyBackend) check() error {
	if f.down.Load() {
		f.calls.Add(1)
		return errDown
	}
	return nil
}

func (f *flakyBackend) get(ctx context.Context, d string) ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.backend.get(ctx, d)
}

func (f *flakyBackend) peek(ctx context.Context, d string) ([]byte, string, error) {
	if err := f.check(); err != nil {
		return nil, "", err
	}
	return f.backend.peek(ctx, d)
}

func (f *flakyBackend) storeIf(ctx context.Context, d, gen string, v []byte, ttl time.Duration) (bool, string, error) {
	if err := f.check(); err != nil {
		return false, "", err
	}
	return f.backend.storeIf(ctx, d, gen, v, ttl)
}

func (f *flakyBackend) invalidate(ctx context.Context, d string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.backend.invalidate(ctx, d)
}

// While the backend fails, an ingest's invalidation must not wait on it, and when it
// answers again the answer that ingest superseded must not be served from it.
func TestInvalidateWhileBackendFailsIsReplayedNotWaitedOn(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	mem := NewMemory(Options{TTL: time.Hour, Now: clock})
	flaky := &flakyBackend{backend: mem.b}
	c := newRealtime("flaky", flaky, Options{TTL: time.Hour, Now: clock})
	device := uniqueDevice()
	answer := []byte(`"old"`)
	load := func(context.Context) ([]byte, error) { return answer, nil }

	v, err := c.Get(ctx, device, load)
	is.NoErr(err)
	is.Equal(string(v), `"old"`) // cached for an hour

	flaky.down.Store(true)
	answer = []byte(`"new"`) // an ingest stores a newer sample...
	v, err = c.Get(ctx, device, load)
	is.NoErr(err)
	is.Equal(string(v), `"new"`) // (a read finds the backend failing and goes to the database)
	failedCalls := flaky.calls.Load()
	c.Invalidate(ctx, device)                 // ...and invalidates while the backend is skipped
	is.Equal(flaky.calls.Load(), failedCalls) // not attempted: no timeout paid

	flaky.down.Store(false)
	now.Add(int64(2 * bypassFor)) // the backend may be tried again
	v, err = c.Get(ctx, device, load)
	is.NoErr(err)
	is.Equal(string(v), `"new"`) // the superseded answer was dropped first, not served
}

// A caller who hangs up neither stops an invalidation nor makes the cache skip a
// backend that is fine.
func TestCancelledCallersDoNotSkipTheBackend(t *testing.T) {
	for name, c := range caches(t, time.Hour) {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			device := uniqueDevice()
			answer := []byte(`"old"`)
			load := func(context.Context) ([]byte, error) { return answer, nil }
			_, err := c.Get(context.Background(), device, load)
			is.NoErr(err)

			gone, cancel := context.WithCancel(context.Background())
			cancel()
			answer = []byte(`"new"`)
			c.Invalidate(gone, device) // the ingest's client hung up after the commit
			_, _ = c.Get(gone, device, load)
			is.True(c.usable()) // not mistaken for a backend failure

			v, err := c.Get(context.Background(), device, load)
			is.NoErr(err)
			is.Equal(string(v), `"new"`) // the invalidation happened all the same
		})
	}
}
