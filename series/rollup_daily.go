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
	return repairBuckets(ctx, conn, RollupDailyName, ms,
		func(t time.Time) time.Time { return t },
		func(t time.Time) time.Time { return Daily.Next(t, l.loc) },
		func(q *db.Queries, p db.DeleteRollupBucketsParams) error {
			if err := q.DeleteRollupDays(ctx, db.DeleteRollupDaysParams(p)); err != nil {
				return fmt.Errorf("delete %d days: %w", len(p.Buckets), err)
			}
			if _, err := q.RebuildRollupDays(ctx, db.RebuildRollupDaysParams(p)); err != nil {
				return fmt.Errorf("rebuild %d days: %w", len(p.Buckets), err)
			}
			return nil
		})
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
func KeepDailyZone(ctx context.Context, conn db.DBTX, loc *time.Location) (days int64, err error) {
	kept, err := rollupDailyZone(ctx, db.New(conn))
	if err != nil || kept == nil || kept.String() == loc.String() {
		return 0, err
	}
	err = inTx(ctx, conn, fmt.Sprintf("rebuild %s in %s", RollupDailyName, loc), func(q *db.Queries) error {
		// Never queue behind a long holder (a removal, a repair): every ingest would
		// queue behind this lock too.
		if err := q.SetLocalConfig(ctx, db.SetLocalConfigParams{Name: "lock_timeout", Value: dailyLockWait}); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
		if err := q.LockRollupDaily(ctx); err != nil {
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "55P03" { // lock_not_available
				return fmt.Errorf("%w: %s was not free within %s", ErrDailyZoneBusy, RollupDailyName, dailyLockWait)
			}
			return fmt.Errorf("lock: %w", err)
		}
		if kept, err = rollupDailyZone(ctx, q); err != nil || kept.String() == loc.String() {
			return err // another serve rebuilt it while this one waited for the lock
		}
		if err := q.SetRollupDailyZone(ctx, loc.String()); err != nil {
			return fmt.Errorf("set the zone: %w", err)
		}
		if err := q.ClearRollupDaily(ctx); err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		days, err = q.FillRollupDaily(ctx, loc.String())
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return days, nil
}
