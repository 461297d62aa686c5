package series

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// sumTolerance is how far (relative) a stored sum may be from the raw one: the two
// add the same terms in different orders.
const sumTolerance = 1e-9

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
		m := Mismatch{Level: RollupName, DeviceID: r.DeviceID, Bucket: r.Bucket, Missing: r.Missing, Extra: r.Extra}
		if !r.Missing && !r.Extra {
			for _, f := range []struct {
				name          string
				stored, sumOf float64
			}{
				{"sample_count", r.StoredSampleCount, r.RawSampleCount},
				{"sum_pv_power_w", r.StoredSumPvPowerW, r.RawSumPvPowerW},
				{"max_pv_power_w", r.StoredMaxPvPowerW, r.RawMaxPvPowerW},
				{"sum_battery_power_w", r.StoredSumBatteryPowerW, r.RawSumBatteryPowerW},
				{"sum_battery_soc_pct", r.StoredSumBatterySocPct, r.RawSumBatterySocPct},
				{"sum_load_power_w", r.StoredSumLoadPowerW, r.RawSumLoadPowerW},
				{"sum_export_power_w", r.StoredSumExportPowerW, r.RawSumExportPowerW},
				{"sum_grid_import_w", r.StoredSumGridImportW, r.RawSumGridImportW},
				{"sum_grid_export_w", r.StoredSumGridExportW, r.RawSumGridExportW},
				{"sum_battery_charge_w", r.StoredSumBatteryChargeW, r.RawSumBatteryChargeW},
				{"sum_battery_discharge_w", r.StoredSumBatteryDischargeW, r.RawSumBatteryDischargeW},
				{"max_pv_daily_kwh", r.StoredMaxPvDailyKwh, r.RawMaxPvDailyKwh},
			} {
				if !closeEnough(f.stored, f.sumOf) {
					m.Fields = append(m.Fields, FieldDiff{Field: f.name, Stored: f.stored, Expected: f.sumOf})
				}
			}
		}
		if m.Missing || m.Extra || len(m.Fields) > 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

// closeEnough reports whether a equals b to sumTolerance relative; NaN (no counter
// on either side) equals only NaN.
func closeEnough(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= sumTolerance*max(math.Abs(a), math.Abs(b))
}

// txBeginner is a pool, connection or transaction that can begin a (sub)transaction.
type txBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Repair implements Level: the buckets of ms are deleted and summed again from the
// raw samples (an extra one, without samples, stays deleted), and the money kept for
// their days is forgotten, in one transaction.
func (RollupLevel) Repair(ctx context.Context, conn db.DBTX, ms []Mismatch) error {
	if len(ms) == 0 {
		return nil
	}
	b, ok := conn.(txBeginner)
	if !ok {
		return errors.New("repair " + RollupName + ": the connection cannot begin a transaction")
	}
	var p db.DeleteRollupBucketsParams
	for _, m := range ms {
		if m.Level != RollupName {
			return fmt.Errorf("repair %s: a mismatch of %s", RollupName, m.Level)
		}
		p.DeviceIds = append(p.DeviceIds, m.DeviceID)
		p.Buckets = append(p.Buckets, m.Bucket.Truncate(rollupBucket))
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repair %s: begin: %w", RollupName, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	q := db.New(tx)
	if err := q.DeleteRollupBuckets(ctx, p); err != nil {
		return fmt.Errorf("repair %s: delete %d buckets: %w", RollupName, len(ms), err)
	}
	if _, err := q.RebuildRollupBuckets(ctx, db.RebuildRollupBucketsParams(p)); err != nil {
		return fmt.Errorf("repair %s: rebuild %d buckets: %w", RollupName, len(ms), err)
	}
	forget := db.ForgetKeptMoneyParams{DeviceIds: p.DeviceIds, FromTs: p.Buckets}
	for _, b := range p.Buckets {
		forget.ToTs = append(forget.ToTs, b.Add(rollupBucket))
	}
	if err := q.ForgetKeptMoney(ctx, forget); err != nil {
		return fmt.Errorf("repair %s: forget the money kept for their days: %w", RollupName, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("repair %s: commit: %w", RollupName, err)
	}
	return nil
}
