package series

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
)

// AuditLockKey is the session advisory lock serve's audits share, so one instance at a
// time audits; it differs from RefreshLockKey, which the audit takes only to repair.
const AuditLockKey int64 = RefreshLockKey + 1

// Auditor is serve's aggregate audit: every period it checks the recent past (the
// current and previous local month, and back to the earliest sample ingest stored since
// the last audit; the first time all history, as `sungrow verify` does) level by level and recomputes the buckets that differ, so a bucket
// TimescaleDB got wrong is mended within a period even if nobody runs `sungrow verify`.
// It only reads while it checks; it holds advisory locks, which neither ingest nor a
// series read takes, and repairs with the refreshes the late-data refresher also runs.
type Auditor struct {
	pool     *pgxpool.Pool
	loc      *time.Location // the zone the aggregates were built in
	every    time.Duration
	logger   *slog.Logger
	now      func() time.Time
	repaired func(aggregate string)    // once per repaired bucket
	took     func(audit time.Duration) // once per audit that ran

	mu      sync.Mutex
	first   bool // no audit has run yet: the first checks all history, as verify does
	pending bool
	lo      time.Time // the earliest sample stored since the last audit
}

// AuditOptions are the Auditor's clock (nil: time.Now) and what it reports to.
type AuditOptions struct {
	Now      func() time.Time
	Repaired func(aggregate string)
	Took     func(time.Duration)
}

// NewAuditor returns an Auditor of the aggregates built in loc that audits every period.
func NewAuditor(pool *pgxpool.Pool, loc *time.Location, every time.Duration, logger *slog.Logger, o AuditOptions) *Auditor {
	a := &Auditor{pool: pool, loc: loc, every: every, logger: logger, now: o.Now, repaired: o.Repaired, took: o.Took,
		first: true}
	if a.now == nil {
		a.now = time.Now
	}
	if a.repaired == nil {
		a.repaired = func(string) {}
	}
	if a.took == nil {
		a.took = func(time.Duration) {}
	}
	return a
}

// Touched records that samples from..to were stored, so the next audit reaches back to
// them. It never blocks.
func (a *Auditor) Touched(_ string, from, _ time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.pending || from.Before(a.lo) {
		a.lo = from
	}
	a.pending = true
}

// Run audits every period until ctx ends. A failed audit is logged and its span kept
// for the next one.
func (a *Auditor) Run(ctx context.Context) {
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := a.Audit(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("aggregate audit failed", "err", err)
		}
	}
}

// Audit checks and mends the recent past once and returns the buckets it recomputed;
// none, without error, when another instance is auditing.
func (a *Auditor) Audit(ctx context.Context) ([]Mismatch, error) {
	began := time.Now()
	a.mu.Lock()
	lo, touched, first := a.lo, a.pending, a.first
	a.pending = false
	a.mu.Unlock()
	ms, ran, err := a.audit(ctx, lo, touched, first)
	a.mu.Lock()
	if err != nil && touched && (!a.pending || lo.Before(a.lo)) {
		a.lo, a.pending = lo, true // keep the span for the next audit
	}
	if ran && err == nil {
		a.first = false
	}
	a.mu.Unlock()
	if ran {
		a.took(time.Since(began))
	}
	return ms, err
}

// audit checks from the previous local month on, from further back when ingest stored
// older samples since the last audit, and from the beginning the first time: a bucket
// that went wrong before this instance started is mended once, not only if ingest
// touches it again. ran is false when another instance holds the audit lock.
func (a *Auditor) audit(ctx context.Context, lo time.Time, touched, first bool) (_ []Mismatch, ran bool, _ error) {
	conn, err := a.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("aggregate audit: %w", err)
	}
	defer conn.Release()
	unlock, ok, err := LockSession(ctx, conn, AuditLockKey, false)
	if err != nil || !ok {
		return nil, false, err
	}
	defer unlock()

	now := a.now()
	from := Monthly.Floor(Monthly.Floor(now, a.loc).Add(-time.Nanosecond), a.loc) // the previous month
	// Whole months at every level: a month is checked against its days, so its days
	// must be checked against their hours first, all of them.
	if touched && lo.Before(from) {
		from = Monthly.Floor(lo, a.loc)
	}
	horizon, err := RawHorizon(ctx, conn)
	if err != nil {
		return nil, true, err
	}
	rawFrom := AboveRawHorizon(Hourly, from, horizon)
	if first {
		// All history above, and the raw samples as verify checks them by default.
		def, err := DefaultRawFrom(ctx, conn, now)
		if err != nil {
			return nil, true, err
		}
		if def.Before(rawFrom) {
			rawFrom = def
		}
		from = allFrom
	}
	span := func(l Level) (time.Time, time.Time) {
		if r, ok := l.(RawSourced); ok && r.FromRawSamples() {
			return rawFrom, now
		}
		return from, now
	}
	levels, err := Levels(ctx, conn, a.loc)
	if err != nil {
		return nil, true, err
	}
	// Check without the refresh lock, so the late-data refresher is not held up by a
	// read; mend (which checks again) only when something differs.
	ms, err := Check(ctx, conn, levels, "", span)
	if err != nil || len(ms) == 0 {
		return nil, true, err
	}
	unlockRefresh, _, err := LockSession(ctx, conn, RefreshLockKey, true)
	if err != nil {
		return nil, true, err
	}
	defer unlockRefresh()
	// Samples stored below the watermark that no late-data refresh has materialized yet
	// (it waits LATE_REFRESH_DELAY_S, perhaps on another instance) make their hours
	// differ from the raw samples: late data, not damage. Refresh those months as the
	// refresher would, so what is recomputed and counted below is what was wrong.
	if lo, hi, late := rawSourcedSpan(levels, ms); late {
		if err := refreshMonths(ctx, conn, a.loc, lo, hi, now, a.logger); err != nil {
			return nil, true, err
		}
	}
	mended, err := Mend(ctx, conn, levels, "", span)
	for _, m := range mended {
		a.logger.Warn("aggregate audit: recomputed a bucket that differed from the level below",
			"aggregate", m.Level, "device_id", m.DeviceID, "bucket", m.Bucket.Format(time.RFC3339), "differs", m.What())
		a.repaired(m.Level)
	}
	return mended, true, err
}

// rawSourcedSpan is the first and last bucket of ms on a level computed from the raw
// samples; late is false when there is none.
func rawSourcedSpan(levels []Level, ms []Mismatch) (lo, hi time.Time, late bool) {
	raw := map[string]bool{}
	for _, l := range levels {
		if r, ok := l.(RawSourced); ok && r.FromRawSamples() {
			raw[l.Name()] = true
		}
	}
	for _, m := range ms {
		if !raw[m.Level] {
			continue
		}
		if !late || m.Bucket.Before(lo) {
			lo = m.Bucket
		}
		if !late || m.Bucket.After(hi) {
			hi = m.Bucket
		}
		late = true
	}
	return lo, hi, late
}

// LockSession takes the session advisory lock key on conn (waiting for it if wait);
// ok is false when it is held elsewhere and wait is not set. A session lock outlives a
// cancelled context, so unlock releases it regardless, and ends the session if that
// fails rather than return a connection to the pool that still holds it.
func LockSession(ctx context.Context, conn *pgxpool.Conn, key int64, wait bool) (unlock func(), ok bool, err error) {
	q := db.New(conn)
	if wait {
		err = q.RefreshLock(ctx, key)
		ok = err == nil
	} else {
		ok, err = q.TryRefreshLock(ctx, key)
	}
	if err != nil {
		return nil, false, fmt.Errorf("advisory lock %d: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		if err := q.RefreshUnlock(context.WithoutCancel(ctx), key); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}, true, nil
}
