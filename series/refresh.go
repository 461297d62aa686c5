package series

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
)

// RefreshLockKey is the session advisory lock the late-data refreshers of all serve
// instances share, so they take turns instead of refreshing the same ranges at once.
const RefreshLockKey int64 = 0x73756e67726f77 // "sungrow"

// Refresh materializes agg over [from, to). The hourly aggregate (UTC hours) gets the
// buckets its invalidation log names recomputed; the daily and monthly ones, which
// bucket in the zone, get every bucket of the window recomputed whole (force), since
// TimescaleDB can drop or leave stale such buckets when a materialization spans several
// chunks (timescale/timescaledb#10296) and a forced refresh is what brings them back. It
// must not run inside a transaction; conn is a pool or a plain connection.
func Refresh(ctx context.Context, conn db.DBTX, agg Aggregate, from, to time.Time) error {
	return refresh(ctx, conn, agg, from, to, agg != Hourly)
}

// Recompute recomputes every bucket of agg in [from, to) from the level below, whatever
// the invalidation log says: the repair of buckets verification found wrong.
func Recompute(ctx context.Context, conn db.DBTX, agg Aggregate, from, to time.Time) error {
	return refresh(ctx, conn, agg, from, to, true)
}

func refresh(ctx context.Context, conn db.DBTX, agg Aggregate, from, to time.Time, force bool) error {
	err := db.New(conn).RefreshAggregate(ctx, db.RefreshAggregateParams{
		// Column2..4 are the window and force: the casts the server needs to type
		// TimescaleDB's "any" parameters cost sqlc their names.
		ContinuousAggregate: string(agg), Column2: from, Column3: to, Column4: force,
	})
	if err != nil {
		return fmt.Errorf("refresh %s from %s to %s: %w", agg, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return nil
}

// Refresher keeps the aggregates right when samples arrive late. Real-time aggregation
// covers only the time above an aggregate's materialization watermark and the refresh
// policies look back a few buckets, so a sample buffered by the edge through a days-long
// outage would stay out of the series. Ingest tells the Refresher which time span each
// batch touched (Touched never blocks or waits on the database); Run gathers the spans
// for a short delay, so a burst costs one refresh, then refreshes the part below each
// watermark, hourly before daily before monthly.
type Refresher struct {
	pool   *pgxpool.Pool
	loc    *time.Location // the zone the aggregates were built in
	delay  time.Duration
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	pending bool
	lo, hi  time.Time // the union of the touched spans, hi inclusive
	kick    chan struct{}
}

// Bounds of the wait between rounds: a floor so that no setting can make the
// refresher spin, and a ceiling for the back-off after failures.
const (
	minRefreshDelay = 10 * time.Millisecond
	maxRefreshDelay = 5 * time.Minute
)

// NewRefresher returns a Refresher for aggregates built in loc; now is its clock (nil:
// time.Now), which says which buckets are complete.
func NewRefresher(pool *pgxpool.Pool, loc *time.Location, delay time.Duration, logger *slog.Logger,
	now func() time.Time) *Refresher {
	if now == nil {
		now = time.Now
	}
	return &Refresher{pool: pool, loc: loc, delay: max(delay, minRefreshDelay), logger: logger, now: now,
		kick: make(chan struct{}, 1)}
}

// Touched records that samples from..to (inclusive) were stored. It never blocks.
func (r *Refresher) Touched(_ string, from, to time.Time) {
	r.mu.Lock()
	if !r.pending || from.Before(r.lo) {
		r.lo = from
	}
	if !r.pending || to.After(r.hi) {
		r.hi = to
	}
	r.pending = true
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // a round is already due
	}
}

func (r *Refresher) take() (lo, hi time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lo, hi, ok = r.lo, r.hi, r.pending
	r.pending = false
	return lo, hi, ok
}

// errBusy means another instance holds the refresh lock; the span is kept for later.
var errBusy = errors.New("another instance is refreshing")

// Run refreshes touched spans until ctx ends. A failed round keeps its span and is
// retried, after a wait that doubles with each failure in a row.
func (r *Refresher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	<-timer.C
	wait := r.delay
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		lo, hi, ok := r.take()
		if !ok {
			continue
		}
		err := r.refresh(ctx, lo, hi)
		if err == nil {
			wait = r.delay
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait = min(2*wait, maxRefreshDelay)
		level := slog.LevelWarn
		if errors.Is(err, errBusy) {
			level = slog.LevelDebug
		}
		r.logger.Log(ctx, level, "late-data refresh postponed", "err", err, "retry_in", wait.String())
		r.Touched("", lo, hi)
	}
}

// refresh materializes the complete buckets of every aggregate over the months that
// [lo, hi] falls in, hourly before daily before monthly.
//
// Whole months, not only the touched buckets: each coarser aggregate is computed from
// the finer one's materialized rows, so the finer one must be materialized over the
// coarser one's whole bucket first. Whatever the watermark: a span above it is served
// by real-time aggregation for now, but the next policy run moves the watermark past it
// without materializing it (a policy refreshes only its own window), and the samples
// would vanish from the series. Complete buckets only: a window must cover whole
// buckets, and a materialized bucket stops taking in new samples. TimescaleDB
// recomputes only what its invalidation log names in a window, so the parts of a month
// that did not change cost little.
func (r *Refresher) refresh(ctx context.Context, lo, hi time.Time) error {
	now := r.now()
	if !lo.Before(Hourly.Floor(now, r.loc)) {
		return nil // all in the current hour: no bucket of it is complete yet
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("late-data refresh: %w", err)
	}
	defer conn.Release()
	unlock, locked, err := LockSession(ctx, conn, RefreshLockKey, false)
	if err != nil {
		return fmt.Errorf("late-data refresh: %w", err)
	}
	if !locked {
		return errBusy
	}
	defer unlock()
	return refreshMonths(ctx, conn, r.loc, lo, hi, now, r.logger)
}

// refreshMonths is the late-data refresh of [lo, hi] on conn, whose session holds
// RefreshLockKey: every aggregate over the local months the span falls in, finest first.
func refreshMonths(ctx context.Context, conn db.DBTX, loc *time.Location, lo, hi, now time.Time, logger *slog.Logger) error {
	from, to := Monthly.Floor(lo, loc), Monthly.Next(Monthly.Floor(hi, loc), loc)
	horizon, err := RawHorizon(ctx, conn)
	if err != nil {
		return err
	}
	for _, agg := range Aggregates {
		start, end := Window(agg, from, to, now, loc)
		start = AboveRawHorizon(agg, start, horizon)
		if !start.Before(end) {
			continue
		}
		began := time.Now()
		if err := Refresh(ctx, conn, agg, start, end); err != nil {
			return err
		}
		logger.Info("refreshed late data", "aggregate", string(agg), "from", start, "to", end,
			"took", time.Since(began).String())
	}
	return nil
}

// Window is the refresh window of agg for a requested [from, to) (zero: unbounded) in
// whole buckets: it starts at the bucket holding from and ends at the start of the
// bucket holding to, and no later than the start of the bucket holding now. A bucket
// is never materialized from part of its data: the coarser aggregates read the finer
// ones' materialized rows, and a materialized bucket stops taking in new samples
// through real-time aggregation, so the current one is left open.
func Window(agg Aggregate, from, to, now time.Time, loc *time.Location) (time.Time, time.Time) {
	if from.IsZero() {
		from = allFrom
	}
	current := agg.Floor(now, loc)
	if to.IsZero() || to.After(current) {
		to = current
	}
	return agg.Floor(from, loc), agg.Floor(to, loc)
}

// RawHorizon returns where raw retention (`sungrow storage policy --raw-retention`) has
// dropped sungrow_samples up to; zero when nothing was dropped.
func RawHorizon(ctx context.Context, conn db.DBTX) (time.Time, error) {
	q := db.New(conn)
	present, err := q.RawHorizonPresent(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("look for the raw retention horizon: %w", err)
	}
	if !present {
		return time.Time{}, nil
	}
	h, err := q.RawHorizon(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the raw retention horizon: %w", err)
	}
	if len(h) == 0 {
		return time.Time{}, nil
	}
	return h[0], nil
}

// AboveRawHorizon moves the start of a refresh window of agg up to the raw horizon.
// Dropping chunks logs an invalidation of their range, and a refresh of the hourly
// aggregate over it would recompute those hours from no samples and delete them, and
// the days and months above with them. The daily and monthly aggregates read the
// hourly one, which keeps its buckets, so their windows stay.
func AboveRawHorizon(agg Aggregate, start, horizon time.Time) time.Time {
	if agg != Hourly || !start.Before(horizon) {
		return start
	}
	if h := horizon.Truncate(time.Hour); h.Before(horizon) {
		return h.Add(time.Hour) // a whole hour, never one the drop reached into
	}
	return horizon
}
