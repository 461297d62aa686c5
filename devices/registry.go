package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sungrow/sungrow/db"
)

// Registry answers which device a bearer token speaks for, from memory: the active
// tokens of the devices table merged with DEVICE_TOKENS (the table wins for a device
// it defines). Run keeps it current by polling the table's change counter and writes
// the tokens' last use, batched, off the request path.
type Registry struct {
	q      *db.Queries // nil: DEVICE_TOKENS only, never refreshed
	env    map[Hash]string
	logger *slog.Logger
	now    func() time.Time
	poll   time.Duration

	state atomic.Pointer[snapshot]

	mu      sync.Mutex
	touched map[int64]struct{} // table tokens used since the last flush
}

// snapshot is one immutable view of every usable token; a reload swaps in a new one.
type snapshot struct {
	version int64
	tokens  map[Hash]*entry
	// intervals holds the sample interval of each device of the table that sets one.
	intervals map[string]time.Duration
	// fromTable and fromEnv count the tokens by origin; envIgnored the DEVICE_TOKENS
	// entries whose device the table defines.
	fromTable, fromEnv, envIgnored int
}

type entry struct {
	grant Grant
	id    int64 // the table's token id; 0 for DEVICE_TOKENS
	// marked is the Unix second this token's use was last queued for writing, so a
	// token busy with many requests is queued once a minute, not once a request.
	marked atomic.Int64
}

// Options tune a Registry; the zero value is what serve uses.
type Options struct {
	Logger *slog.Logger
	// Now is the clock of last_used_at (nil: time.Now).
	Now func() time.Time
	// Poll is how often Run asks whether the table changed (0: every second).
	Poll time.Duration
}

// touchEvery is how often, at most, a token's last use is written.
const touchEvery = 60 // seconds

// Static returns a Registry of fixed tokens (token → device), as DEVICE_TOKENS alone
// gives: nothing to refresh, nothing to write.
func Static(tokens map[string]string) *Registry {
	r := newRegistry(nil, tokens, Options{})
	s := &snapshot{tokens: make(map[Hash]*entry, len(r.env))}
	for h, device := range r.env {
		s.tokens[h] = &entry{grant: Grant{Device: device, Scope: ReadWrite}}
	}
	s.fromEnv = len(s.tokens)
	r.state.Store(s)
	return r
}

// Open returns a Registry over the devices table of conn, merged with envTokens
// (DEVICE_TOKENS: token → device), loaded once; Run keeps it current.
func Open(ctx context.Context, conn db.DBTX, envTokens map[string]string, opts Options) (*Registry, error) {
	r := newRegistry(db.New(conn), envTokens, opts)
	if err := r.reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func newRegistry(q *db.Queries, envTokens map[string]string, opts Options) *Registry {
	r := &Registry{q: q, env: make(map[Hash]string, len(envTokens)), logger: opts.Logger, now: opts.Now,
		poll: opts.Poll, touched: map[int64]struct{}{}}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.poll <= 0 {
		r.poll = time.Second
	}
	for token, device := range envTokens {
		r.env[HashToken(token)] = device
	}
	return r
}

// SampleInterval returns how long one reading of the device stands for, when its row
// in the devices table sets it (`device add --interval`); false: use SAMPLE_INTERVAL_S.
func (r *Registry) SampleInterval(deviceID string) (time.Duration, bool) {
	d, ok := r.state.Load().intervals[deviceID]
	return d, ok
}

// Authenticate returns the device and scope of a bearer token. It costs one SHA-256 and one map
// lookup whatever the number of tokens, and never waits on the database.
//
// Not comparing in constant time is safe here: the map is keyed by the SHA-256 of the
// token, so what a lookup's timing could reveal (how the offered token's hash falls
// among the stored hashes) is about a hash the attacker cannot steer, and tells
// nothing about any token, the same as for a guess that matches nothing.
func (r *Registry) Authenticate(token string) (Grant, bool) {
	e, ok := r.state.Load().tokens[HashToken(token)]
	if !ok {
		return Grant{}, false
	}
	if e.id != 0 {
		r.touch(e)
	}
	return e.grant, true
}

// touch queues a table token's use for the next flush, at most once a minute.
func (r *Registry) touch(e *entry) {
	now := r.now().Unix()
	last := e.marked.Load()
	if now-last < touchEvery || !e.marked.CompareAndSwap(last, now) {
		return
	}
	r.mu.Lock()
	r.touched[e.id] = struct{}{}
	r.mu.Unlock()
}

// Devices lists, in id order, the devices that have at least one token that can
// authenticate right now (the MQTT bridge takes a device without one out of Home
// Assistant). It walks every token: call it every few seconds, not per request.
func (r *Registry) Devices() []string {
	seen := map[string]bool{}
	for _, e := range r.state.Load().tokens {
		seen[e.grant.Device] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// Tokens is how many tokens can authenticate right now.
func (r *Registry) Tokens() int {
	return len(r.state.Load().tokens)
}

// CheckTokens fails while no token can authenticate, for GET /ready: an instance that
// admits nobody is not ready for traffic. Its error is safe to show anyone.
func (r *Registry) CheckTokens(context.Context) error {
	if r.Tokens() == 0 {
		return errNoTokens
	}
	return nil
}

var errNoTokens = errors.New("none: nothing can authenticate (add a device with `sungrow device add ID`, or set DEVICE_TOKENS)")

// Run follows the table until ctx ends: every poll it asks for the change counter and
// reloads when it moved, and writes the queued last uses. On the way out it writes
// what is still queued.
func (r *Registry) Run(ctx context.Context) {
	if r.q == nil {
		return
	}
	t := time.NewTicker(r.poll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.Flush(flushCtx); err != nil {
				r.logger.Warn("device tokens: could not write their last use on the way out", "err", err)
			}
			return
		case <-t.C:
		}
		err := r.Refresh(ctx)
		if err == nil {
			err = r.Flush(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			r.logger.Warn("device tokens: the table failed; authenticating with the tokens loaded before",
				"version", r.state.Load().version, "err", err)
		case err == nil && failing:
			failing = false
			r.logger.Info("device tokens: the table answers again")
		}
	}
}

// Refresh reloads the tokens if the table changed since the last load.
func (r *Registry) Refresh(ctx context.Context) error {
	v, err := r.q.AuthVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the device tokens' version: %w", err)
	}
	if v == r.state.Load().version {
		return nil
	}
	return r.reload(ctx)
}

// reload reads every active token and builds a new snapshot. The version is read
// first: a change committed meanwhile moves it again, so the next poll reloads.
func (r *Registry) reload(ctx context.Context) error {
	began := time.Now()
	v, err := r.q.AuthVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the device tokens' version: %w", err)
	}
	devices, err := r.q.TableDevices(ctx)
	if err != nil {
		return fmt.Errorf("read the devices: %w", err)
	}
	rows, err := r.q.ActiveTokens(ctx)
	if err != nil {
		return fmt.Errorf("read the device tokens: %w", err)
	}
	defined := make(map[string]bool, len(devices))
	intervals := make(map[string]time.Duration)
	for _, d := range devices {
		defined[d.ID] = true
		if d.IntervalS != nil {
			intervals[d.ID] = time.Duration(*d.IntervalS) * time.Second
		}
	}
	s := &snapshot{version: v, tokens: make(map[Hash]*entry, len(rows)+len(r.env)), intervals: intervals}
	var ignored []string
	for h, device := range r.env {
		if defined[device] {
			ignored = append(ignored, device)
			continue
		}
		s.tokens[h] = &entry{grant: Grant{Device: device, Scope: ReadWrite}}
	}
	s.fromEnv = len(s.tokens)
	for _, row := range rows {
		if len(row.Sha256) != len(Hash{}) {
			continue // the table's CHECK makes this impossible
		}
		e := &entry{grant: Grant{Device: row.DeviceID, Scope: scopeOf(row.ReadOnly)}, id: row.ID}
		if row.LastUsedAt != nil {
			e.marked.Store(row.LastUsedAt.Unix())
		}
		// A table token equal to a DEVICE_TOKENS one: the table's device wins.
		s.tokens[Hash(row.Sha256)] = e
	}
	s.fromTable = len(rows)
	s.envIgnored = len(ignored)
	old := r.state.Swap(s)

	sort.Strings(ignored)
	attrs := []any{"version", v, "table_tokens", s.fromTable, "env_tokens", s.fromEnv,
		"took", time.Since(began).Round(time.Millisecond).String()}
	if len(ignored) > 0 {
		attrs = append(attrs, "env_tokens_ignored_for", ignored)
	}
	r.logger.Info("device tokens loaded", attrs...)
	if len(s.tokens) == 0 && (old == nil || len(old.tokens) > 0) {
		r.logger.Warn("no device token: nothing can authenticate until one is added (sungrow device add ID) or DEVICE_TOKENS is set")
	}
	return nil
}

// Flush writes the last use of the tokens used since the previous flush, in one
// statement per batch.
func (r *Registry) Flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.touched) == 0 {
		r.mu.Unlock()
		return nil
	}
	ids := make([]int64, 0, len(r.touched))
	for id := range r.touched {
		ids = append(ids, id)
	}
	r.touched = map[int64]struct{}{}
	r.mu.Unlock()

	const batch = 10000
	at := r.now()
	for len(ids) > 0 {
		n := min(batch, len(ids))
		if _, err := r.q.TouchTokens(ctx, db.TouchTokensParams{UsedAt: at, Ids: ids[:n]}); err != nil {
			r.requeue(ids)
			return fmt.Errorf("write the last use of %d tokens: %w", len(ids), err)
		}
		ids = ids[n:]
	}
	return nil
}

// requeue keeps what a failed flush could not write for the next one.
func (r *Registry) requeue(ids []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.touched[id] = struct{}{}
	}
}
