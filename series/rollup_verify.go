package series

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/db"
)

// RollupLevel is plain PostgreSQL's sungrow_rollup as a verification Level: each
// 15-minute bucket against the sums of the raw samples in it.
type RollupLevel struct{}

// RollupName is the rollup's table, as its Mismatches name it.
const RollupName = "sungrow_rollup"

// rollupBucket is the rollup's bucket width (date_bin in queries/rollup.sql).
const rollupBucket = 15 * time.Minute

// Name implements Level.
func (RollupLevel) Name() string { return RollupName }

// Compare implements Level: every bucket of [from, to) whose count, sums or maxima
// differ from the raw samples', and every bucket missing or extra.
func (RollupLevel) Compare(ctx context.Context, conn db.DBTX, device string, from, to time.Time) ([]Mismatch, error) {
	rows, err := db.New(conn).CompareRollup(ctx, db.CompareRollupParams{DeviceID: device, FromTs: from, ToTs: to})
	if err != nil {
		return nil, fmt.Errorf("compare %s with the raw samples: %w", RollupName, err)
	}
	var out []Mismatch
	for _, r := range rows {
		if m, differs := diff(RollupName, hourlyFields, pair{r.DeviceID, r.Bucket, r.Stored, r.Expected}); differs {
			out = append(out, m)
		}
	}
	return out, nil
}

// txBeginner is a pool, connection or transaction that can begin a (sub)transaction.
type txBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Repair implements Level: the buckets of ms are deleted and summed again from the
// raw samples (an extra one, without samples, stays deleted), and the money kept for
// their days is forgotten, in one transaction.
func (RollupLevel) Repair(ctx context.Context, conn db.DBTX, ms []Mismatch) error {
	return repairBuckets(ctx, conn, RollupName, ms,
		func(t time.Time) time.Time { return t.Truncate(rollupBucket) },
		func(t time.Time) time.Time { return t.Add(rollupBucket) },
		func(q *db.Queries, p db.DeleteRollupBucketsParams) error {
			if err := q.DeleteRollupBuckets(ctx, p); err != nil {
				return fmt.Errorf("delete %d buckets: %w", len(p.Buckets), err)
			}
			if _, err := q.RebuildRollupBuckets(ctx, db.RebuildRollupBucketsParams(p)); err != nil {
				return fmt.Errorf("rebuild %d buckets: %w", len(p.Buckets), err)
			}
			return nil
		})
}

// repairBuckets is the rollup levels' Repair: in one transaction, redo recomputes the
// buckets of ms (all of level name; starts give the arrays of devices and bucket
// starts, which advance together), and the money kept for the days that may hold
// [start, next(start)) is forgotten.
func repairBuckets(ctx context.Context, conn db.DBTX, name string, ms []Mismatch, start, next func(time.Time) time.Time,
	redo func(*db.Queries, db.DeleteRollupBucketsParams) error) error {
	if len(ms) == 0 {
		return nil
	}
	var p db.DeleteRollupBucketsParams
	forget := db.ForgetKeptMoneyParams{}
	for _, m := range ms {
		if m.Level != name {
			return fmt.Errorf("repair %s: a mismatch of %s", name, m.Level)
		}
		b := start(m.Bucket)
		p.DeviceIds = append(p.DeviceIds, m.DeviceID)
		p.Buckets = append(p.Buckets, b)
		forget.ToTs = append(forget.ToTs, next(b))
	}
	forget.DeviceIds, forget.FromTs = p.DeviceIds, p.Buckets
	return inTx(ctx, conn, "repair "+name, func(q *db.Queries) error {
		if err := redo(q, p); err != nil {
			return err
		}
		if err := q.ForgetKeptMoney(ctx, forget); err != nil {
			return fmt.Errorf("forget the money kept for their days: %w", err)
		}
		return nil
	})
}

// inTx runs fn in one transaction on conn (a pool, connection or transaction), errors
// named by what.
func inTx(ctx context.Context, conn db.DBTX, what string, fn func(*db.Queries) error) error {
	b, ok := conn.(txBeginner)
	if !ok {
		return errors.New(what + ": the connection cannot begin a transaction")
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if err := fn(db.New(tx)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
