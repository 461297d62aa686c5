// Package cache keeps each device's realtime answer (its newest sample, encoded) close
// at hand for GET /v1/realtime: in Redis when REDIS_URL is set, so every sungrow
// instance shares it, else in this process. Either way, concurrent misses for a device
// collapse into one load, a failing Redis costs a request no more than one short
// timeout, and an ingest's invalidation is never undone by a load that raced it.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// loadTimeout bounds one collapsed load: it runs on behalf of every waiter, so it
	// must not die with the request that happened to start it.
	loadTimeout = 10 * time.Second
	// bypassFor is how long the cache is skipped after a backend failure, so a dead
	// Redis costs one timeout per period rather than one per request; afterwards the
	// next request tries again, which is how caching resumes without a restart.
	bypassFor = time.Second
	// warnEvery bounds how often backend failures are logged.
	warnEvery = 30 * time.Second
	// storeAttempts is how often a load is repeated when ingests keep invalidating
	// the device while it runs; the last result is answered even if it was not stored.
	storeAttempts = 3
)

// backend is where encoded answers live. gen is the device's invalidation generation:
// storeIf stores only while it is still the one the load began under.
type backend interface {
	// get returns the cached value, or nil on a miss.
	get(ctx context.Context, device string) ([]byte, error)
	// peek returns the cached value (nil on a miss) and the current generation.
	peek(ctx context.Context, device string) (val []byte, gen string, err error)
	// storeIf stores val with ttl if gen is still current; otherwise it returns the
	// current generation.
	storeIf(ctx context.Context, device, gen string, val []byte, ttl time.Duration) (stored bool, current string, err error)
	// invalidate drops the value and starts a new generation.
	invalidate(ctx context.Context, device string) error
	// ping checks that the backend answers.
	ping(ctx context.Context) error
	close() error
}

// Options tune a cache; TTL is required.
type Options struct {
	TTL    time.Duration
	Logger *slog.Logger
	// Now is the clock of the in-process TTLs and of the failure back-off; tests pin it.
	Now func() time.Time
}

// Realtime is the realtime cache. Its zero value is not usable: use NewRedis or
// NewMemory.
type Realtime struct {
	name    string
	b       backend
	ttl     time.Duration
	logger  *slog.Logger
	now     func() time.Time
	flights singleflight.Group

	// bypassUntil (unix ns) is when the backend may be tried again after a failure.
	bypassUntil atomic.Int64
	failing     atomic.Bool

	warnMu     sync.Mutex
	lastWarn   time.Time
	suppressed int

	// pending holds the devices whose invalidation was skipped or failed while the
	// backend was failing; they are invalidated before the backend is read again.
	pendingMu  sync.Mutex
	pending    map[string]struct{}
	hasPending atomic.Bool
}

func newRealtime(name string, b backend, o Options) *Realtime {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Realtime{name: name, b: b, ttl: o.TTL, logger: o.Logger, now: o.Now}
}

// Name says which cache this is ("redis" or "memory"), for the start-up log.
func (c *Realtime) Name() string { return c.name }

// TTL is how long an answer is cached.
func (c *Realtime) TTL() time.Duration { return c.ttl }

// Get returns the cached answer of device, or calls load once for all concurrent
// callers that missed and caches its result. Errors of load (such as "no data") are
// returned and not cached; errors of the cache itself are logged, never returned.
func (c *Realtime) Get(ctx context.Context, device string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	if c.usable() && c.flushPending(ctx) {
		val, err := c.b.get(ctx, device)
		if err == nil && val != nil {
			c.recovered()
			return val, nil
		}
		// A caller who gave up says nothing about the backend.
		if err != nil && ctx.Err() == nil {
			c.fail("read", err, bypassFor)
		}
	}
	ch := c.flights.DoChan(device, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		return c.fill(fctx, device, load)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]byte), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for realtime load: %w", ctx.Err())
	}
}

// fill runs once per collapsed miss: it looks again (an earlier flight may have just
// stored the answer), loads, and stores under the generation it looked at, loading
// again if an ingest invalidated the device meanwhile, since what it read may predate
// that ingest's rows.
func (c *Realtime) fill(ctx context.Context, device string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	cached := c.usable() && c.flushPending(ctx)
	var gen string
	if cached {
		val, g, err := c.b.peek(ctx, device)
		switch {
		case err != nil:
			c.fail("read", err, bypassFor)
			cached = false
		case val != nil:
			c.recovered()
			return val, nil
		default:
			gen = g
		}
	}
	for attempt := 1; ; attempt++ {
		val, err := load(ctx)
		if err != nil || !cached {
			return val, err
		}
		stored, current, err := c.b.storeIf(ctx, device, gen, val, c.ttl)
		if err != nil {
			c.fail("store", err, bypassFor)
			return val, nil
		}
		c.recovered()
		if stored || attempt == storeAttempts {
			return val, nil
		}
		gen = current
	}
}

// Invalidate forgets the cached answer of a device, so the next read loads the newest
// sample. It is best effort: failures are logged, never returned. Call it after the
// new rows are committed.
//
// Invalidate, not write-through: the rows an ingest inserted need not hold the
// device's newest sample (a backfill, or a batch whose newest row was a duplicate), so
// writing through would cost a query per ingest plus a newer-than comparison inside
// the cache; invalidating costs one round trip and the next read, which is at most
// one query per device thanks to the collapsed misses, loads the truth. The
// generation bump makes a load that began before the commit unable to store its
// older answer afterwards.
//
// While the backend is failing, the invalidation is not attempted (an ingest must not
// wait out a timeout per batch) but remembered, like one that failed: the backend is
// not read again before every remembered device is invalidated, so this instance never
// serves an answer an ingest superseded.
func (c *Realtime) Invalidate(ctx context.Context, device string) {
	// The rows are committed whether or not the caller is still there.
	ctx = context.WithoutCancel(ctx)
	// A load in flight may predate the commit: later readers must not join it.
	defer c.flights.Forget(device)
	if !c.usable() || !c.flushPending(ctx) {
		c.remember(device)
		return
	}
	if err := c.b.invalidate(ctx, device); err != nil {
		c.remember(device)
		c.fail("invalidate", err, bypassFor)
		return
	}
	c.recovered()
}

func (c *Realtime) remember(device string) {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	if c.pending == nil {
		c.pending = make(map[string]struct{})
	}
	c.pending[device] = struct{}{}
	c.hasPending.Store(true)
}

// flushPending invalidates the remembered devices and reports whether the backend may
// be used; on a failure it is skipped again and the rest stay remembered.
func (c *Realtime) flushPending(ctx context.Context) bool {
	if !c.hasPending.Load() {
		return true
	}
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	for device := range c.pending {
		if err := c.b.invalidate(ctx, device); err != nil {
			if ctx.Err() == nil { // a caller who gave up says nothing about the backend
				c.fail("invalidate", err, bypassFor)
			}
			return false
		}
		delete(c.pending, device)
	}
	c.hasPending.Store(false)
	return true
}

// Ping checks that the cache's store answers, for GET /ready.
func (c *Realtime) Ping(ctx context.Context) error { return c.b.ping(ctx) }

// Close releases the backend's connections.
func (c *Realtime) Close() error { return c.b.close() }

func (c *Realtime) usable() bool {
	until := c.bypassUntil.Load()
	return until == 0 || c.now().UnixNano() >= until
}

// fail skips the backend for a while and logs at most one warning per warnEvery,
// counting the failures it did not log.
func (c *Realtime) fail(op string, err error, hold time.Duration) {
	now := c.now()
	until := now.Add(hold).UnixNano()
	for {
		cur := c.bypassUntil.Load()
		if cur >= until || c.bypassUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	c.failing.Store(true)
	c.warnMu.Lock()
	defer c.warnMu.Unlock()
	if !c.lastWarn.IsZero() && now.Sub(c.lastWarn) < warnEvery {
		c.suppressed++
		return
	}
	c.logger.Warn("realtime cache unavailable: answering from the database",
		"cache", c.name, "op", op, "err", err, "suppressed_since_last_warning", c.suppressed,
		"next_warning_in", warnEvery.String())
	c.lastWarn, c.suppressed = now, 0
}

func (c *Realtime) recovered() {
	if c.failing.Load() && c.failing.CompareAndSwap(true, false) {
		c.logger.Info("realtime cache available again", "cache", c.name)
	}
}
