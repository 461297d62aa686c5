package series

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sungrow/sungrow/db"
)

// RollupDailyName is plain PostgreSQL's daily level above the rollup
// (sql/00011_rollup_daily.sql), as its Mismatches name it.
const RollupDailyName = "sungrow_rollup_daily"

// RollupDailyLevel is sungrow_rollup_daily as a verification Level: each local day (in
// loc, the zone the days are kept in) against the sum of its quarter hours.
type RollupDailyLevel struct {
	loc *time.Location
}

// Name implements Level.
func (RollupDailyLevel) Name() string { return RollupDailyName }

// Compare implements Level over the whole local days that begin in [from, to).
func (l RollupDailyLevel) Compare(ctx context.Context, conn db.DBTX, device string, from, to time.Time) ([]Mismatch, error) {
	if from.IsZero() {
		from = allFrom
	}
	from, to = Daily.Floor(from, l.loc), Daily.Next(Daily.Floor(to.Add(-time.Nanosecond), l.loc), l.loc)
	if !from.Before(to) {
		return nil, nil
	}
	rows, err := db.New(conn).CompareRollupDaily(ctx, db.CompareRollupDailyParams{FromTs: from, ToTs: to, DeviceID: device})
	if err != nil {
		return nil, fmt.Errorf("compare %s with its quarter hours: %w", RollupDailyName, err)
	}
	var out []Mismatch
	for _, r := range rows {
		if m, differs := diff(RollupDailyName, hourlyFields, pair{r.DeviceID, r.Bucket, r.Stored, r.Expected}); differs {
			m.Bucket = m.Bucket.In(l.loc)
			out = append(out, m)
		}
	}
	return out, nil
}

// Repair implements Level: the days of ms are deleted and summed again from their
// quarter hours (an extra one, without any, stays deleted), and the money kept for
// them is forgotten, in one transaction.
func (l RollupDailyLevel) Repair(ctx context.Context, conn db.DBTX, ms []Mismatch) error {
	if len(ms) == 0 {
		return nil
	}
	b, ok := conn.(txBeginner)
	if !ok {
		return errors.New("repair " + RollupDailyName + ": the connection cannot begin a transaction")
	}
	var p db.DeleteRollupDaysParams
	for _, m := range ms {
		if m.Level != RollupDailyName {
			return fmt.Errorf("repair %s: a mismatch of %s", RollupDailyName, m.Level)
		}
		p.DeviceIds = append(p.DeviceIds, m.DeviceID)
		p.Buckets = append(p.Buckets, m.Bucket)
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repair %s: begin: %w", RollupDailyName, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	q := db.New(tx)
	if err := q.DeleteRollupDays(ctx, p); err != nil {
		return fmt.Errorf("repair %s: delete %d days: %w", RollupDailyName, len(ms), err)
	}
	if _, err := q.RebuildRollupDays(ctx, db.RebuildRollupDaysParams(p)); err != nil {
		return fmt.Errorf("repair %s: rebuild %d days: %w", RollupDailyName, len(ms), err)
	}
	forget := db.ForgetKeptMoneyParams{DeviceIds: p.DeviceIds, FromTs: p.Buckets}
	for _, b := range p.Buckets {
		forget.ToTs = append(forget.ToTs, Daily.Next(b, l.loc))
	}
	if err := q.ForgetKeptMoney(ctx, forget); err != nil {
		return fmt.Errorf("repair %s: forget the money kept for them: %w", RollupDailyName, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("repair %s: commit: %w", RollupDailyName, err)
	}
	return nil
}

// rollupDailyZone is the zone sungrow_rollup_daily is kept in, nil before migration 11.
func rollupDailyZone(ctx context.Context, q *db.Queries) (*time.Location, error) {
	present, err := q.RollupDailyPresent(ctx)
	if err != nil {
		return nil, fmt.Errorf("look for %s: %w", RollupDailyName, err)
	}
	if !present {
		return nil, nil
	}
	zone, err := q.RollupDailyZone(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the zone of %s: %w", RollupDailyName, err)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("the zone of %s, %q: %w", RollupDailyName, zone, err)
	}
	return loc, nil
}

// ErrDailyZoneBusy is KeepDailyZone's answer when another transaction held the days
// for longer than it waits: they stay in their zone, reads sum the quarter hours.
var ErrDailyZoneBusy = errors.New("the rollup's days are busy: not rebuilt in the new zone")

// dailyLockWait is how long KeepDailyZone waits for the days' lock.
const dailyLockWait = "5s"

// KeepDailyZone makes plain PostgreSQL's sungrow_rollup_daily begin its days in loc:
// kept in another zone (SUNGROW_TZ changed since `migrate up`), it is built again from
// the quarter hours, in one transaction that ingest waits for (about 0.1 s per
// device-year), and it returns how many days it built (0: the zone was loc already, or
// there is no such table). Until then reads sum the quarter hours, so no answer is
// ever in the wrong zone. Serve calls it at start.
func KeepDailyZone(ctx context.Context, conn db.DBTX, loc *time.Location) (int64, error) {
	kept, err := rollupDailyZone(ctx, db.New(conn))
	if err != nil || kept == nil || kept.String() == loc.String() {
		return 0, err
	}
	b, ok := conn.(txBeginner)
	if !ok {
		return 0, errors.New("rebuild " + RollupDailyName + ": the connection cannot begin a transaction")
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: begin: %w", RollupDailyName, loc, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	q := db.New(tx)
	// Never queue behind a long holder (a removal, a repair): every ingest would queue
	// behind this lock too.
	if err := q.SetLocalConfig(ctx, db.SetLocalConfigParams{Name: "lock_timeout", Value: dailyLockWait}); err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: set lock_timeout: %w", RollupDailyName, loc, err)
	}
	if err := q.LockRollupDaily(ctx); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "55P03" { // lock_not_available
			return 0, fmt.Errorf("%w: %s was not free within %s", ErrDailyZoneBusy, RollupDailyName, dailyLockWait)
		}
		return 0, fmt.Errorf("rebuild %s in %s: lock: %w", RollupDailyName, loc, err)
	}
	if kept, err = rollupDailyZone(ctx, q); err != nil || kept.String() == loc.String() {
		return 0, err // another serve rebuilt it while this one waited for the lock
	}
	if err := q.SetRollupDailyZone(ctx, loc.String()); err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: set the zone: %w", RollupDailyName, loc, err)
	}
	if err := q.ClearRollupDaily(ctx); err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: clear: %w", RollupDailyName, loc, err)
	}
	n, err := q.FillRollupDaily(ctx, loc.String())
	if err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: fill: %w", RollupDailyName, loc, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("rebuild %s in %s: commit: %w", RollupDailyName, loc, err)
	}
	return n, nil
}
