package series_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

const rollupDevice = "inverter-rollup"

// rollupFixture is three simulated weeks in Brussels around the spring DST night
// (2026-03-29) and a month boundary, at 2-minute samples.
func rollupFixture(t *testing.T, loc *time.Location) []telemetry.Sample {
	t.Helper()
	g, err := simulate.New(simulate.Config{DeviceID: rollupDevice, Start: time.Date(2026, 3, 18, 0, 0, 0, 0, loc),
		End: time.Date(2026, 4, 8, 0, 0, 0, 0, loc), Interval: 2 * time.Minute, Seed: 22, Latitude: 50.8,
		Location: loc, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000})
	if err != nil {
		t.Fatal(err)
	}
	return g.Next(nil, g.Count())
}

type rollupFrame struct{ frame, date string }

var rollupFrames = []rollupFrame{
	{"day", "2026-03-29"}, {"day", "2026-04-01"}, {"week", "2026-03-29"}, {"week", "2026-04-01"},
	{"month", "2026-03-10"}, {"month", "2026-04-07"}, {"year", "2026-06-01"}, {"all", ""},
}

func insertAll(t *testing.T, store *telemetry.Store, samples []telemetry.Sample) {
	t.Helper()
	for rest := samples; len(rest) > 0; rest = rest[min(len(rest), 1000):] {
		if _, err := store.Insert(context.Background(), rest[0].DeviceID, rest[:min(len(rest), 1000)]); err != nil {
			t.Fatal(err)
		}
	}
}

// answers is every frame of rollupFrames as JSON-shaped values, for comparison.
func answers(t *testing.T, svc *series.Service) map[rollupFrame]any {
	t.Helper()
	out := map[rollupFrame]any{}
	for _, f := range rollupFrames {
		d, err := svc.ParseDate(f.date, time.Date(2026, 4, 8, 12, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Series(context.Background(), rollupDevice, f.frame, d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(map[string]any{"buckets": res.Buckets, "totals": res.Totals, "pricing": res.Pricing})
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out[f] = v
	}
	return out
}

// sameJSON reports the first difference between a and b: numbers to 1e-9 relative,
// everything else exactly.
func sameJSON(path string, a, b any) error {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
		for k := range av {
			if err := sameJSON(path+"."+k, av[k], bv[k]); err != nil {
				return err
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return fmt.Errorf("%s: %d and %d elements", path, len(av), len(bv))
		}
		for i := range av {
			if err := sameJSON(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i]); err != nil {
				return err
			}
		}
	case float64:
		bv, ok := b.(float64)
		if !ok || math.Abs(av-bv) > 1e-9*math.Max(math.Abs(av), math.Abs(bv)) {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
	default:
		if a != b {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
	}
	return nil
}

// TestRollupAnswersAsTimescaleDB: the same simulated weeks, priced with a fixed price
// and a night window, answer every frame identically (every field, 1e-9) from plain
// PostgreSQL's rollup, from its raw samples, and from TimescaleDB's aggregates.
func TestRollupAnswersAsTimescaleDB(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	samples := rollupFixture(t, loc)
	got := map[string]map[rollupFrame]any{}
	var mu sync.Mutex
	t.Run("backends", func(t *testing.T) {
		for _, b := range testenv.Backends {
			t.Run(string(b), func(t *testing.T) {
				t.Parallel()
				is := is.New(t)
				ctx := context.Background()
				d := testenv.NewInZone(t, b, loc.String())
				insertAll(t, telemetry.NewStore(d.Pool), samples)
				prices := tariff.NewStore(d.Pool)
				start, end, err := tariff.ParseWindow("22:00-06:00")
				is.NoErr(err)
				days, err := tariff.ParseDays("mon-sun")
				is.NoErr(err)
				from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				for _, p := range []tariff.Tariff{
					{DeviceID: rollupDevice, Kind: tariff.Fixed, ValidFrom: from, Import: "0.30", Export: "0.08", Currency: "EUR"},
					{DeviceID: rollupDevice, Kind: tariff.Window, ValidFrom: from, Import: "0.20", Export: "0.07", Currency: "EUR",
						Window: tariff.TimeWindow{Start: start, End: end, Days: days}},
				} {
					_, _, err := prices.Set(ctx, p)
					is.NoErr(err)
				}
				svc, info, err := series.Open(ctx, d.Pool, loc)
				is.NoErr(err)
				want := series.PathRollup
				if b == testenv.TimescaleDB {
					want = series.PathAggregates
					for _, agg := range series.Aggregates {
						is.NoErr(series.Refresh(ctx, d.Pool, agg, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2026, 5, 1, 0, 0, 0, 0, loc)))
					}
				}
				is.Equal(info.Path, want)
				clock := func() time.Time { return time.Date(2026, 4, 8, 12, 0, 0, 0, time.UTC) }
				a := answers(t, svc.WithClock(clock))
				mu.Lock()
				got[string(b)] = a
				if b == testenv.Postgres {
					got["postgres raw"] = answers(t, series.NewRaw(d.Pool, loc).WithClock(clock))
				}
				mu.Unlock()
			})
		}
	})
	if len(got) != 3 {
		t.Fatalf("answers of %d paths, want 3", len(got))
	}
	for _, f := range rollupFrames {
		for _, other := range []string{"timescaledb", "postgres raw"} {
			if err := sameJSON(f.frame+" "+f.date, got["postgres"][f], got[other][f]); err != nil {
				t.Errorf("rollup and %s differ: %v", other, err)
			}
		}
	}
}

func frameTotals(t *testing.T, svc *series.Service, frame, date string) series.Result {
	t.Helper()
	d, err := svc.ParseDate(date, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Series(context.Background(), rollupDevice, frame, d)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRollupCountsEachStoredSampleOnce: a late batch in an old month shows in its
// month at once, the same batch re-sent changes nothing, and 16 concurrent batches
// overlapping each other leave the rollup equal to the raw samples.
func TestRollupCountsEachStoredSampleOnce(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	samples := rollupFixture(t, loc)
	insertAll(t, store, samples[len(samples)/2:]) // April first
	svc, info, err := series.Open(ctx, d.Pool, loc)
	is.NoErr(err)
	is.Equal(info.Path, series.PathRollup)

	march := frameTotals(t, svc, "month", "2026-03-01")
	late := samples[:len(samples)/2][:1000]
	n, err := store.Insert(ctx, rollupDevice, late)
	is.NoErr(err)
	is.Equal(n, int64(len(late)))
	after := frameTotals(t, svc, "month", "2026-03-01")
	var lateCount int64
	for _, s := range late {
		lateCount += int64(s.SampleCount)
	}
	var before int64
	for _, b := range march.Buckets {
		before += b.SampleCount
	}
	var now int64
	for _, b := range after.Buckets {
		now += b.SampleCount
	}
	is.Equal(now, before+lateCount) // the late batch, at once

	n, err = store.Insert(ctx, rollupDevice, late) // re-sent
	is.NoErr(err)
	is.Equal(n, int64(0))
	if err := sameJSON("re-sent", jsonOf(t, after), jsonOf(t, frameTotals(t, svc, "month", "2026-03-01"))); err != nil {
		t.Fatalf("a re-sent batch changed the month: %v", err)
	}

	// 16 batches at once, each overlapping the next by half.
	rest := samples[1000 : len(samples)/2]
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		lo := i * len(rest) / 17
		hi := min(len(rest), (i+2)*len(rest)/17)
		wg.Go(func() {
			for part := rest[lo:hi]; len(part) > 0; part = part[min(len(part), 1000):] {
				if _, err := store.Insert(ctx, rollupDevice, part[:min(len(part), 1000)]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	raw := series.NewRaw(d.Pool, loc)
	for _, f := range []string{"month", "all"} {
		if err := sameJSON(f, jsonOf(t, frameTotals(t, raw, f, "2026-03-01")), jsonOf(t, frameTotals(t, svc, f, "2026-03-01"))); err != nil {
			t.Errorf("%s: rollup and raw samples differ after concurrent batches: %v", f, err)
		}
	}
	for _, level := range []series.Level{series.RollupLevel{}, dailyLevel(t, d)} {
		ms, err := level.Compare(ctx, d.Pool, "", time.Time{}, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
		is.NoErr(err)
		is.Equal(len(ms), 0) // the quarter hours equal the samples, the days their quarter hours
	}
}

func jsonOf(t *testing.T, res series.Result) any {
	t.Helper()
	b, err := json.Marshal(map[string]any{"buckets": res.Buckets, "totals": res.Totals})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRollupLevelFindsAndRepairsDamage damages three buckets (a sum, a missing row,
// an extra row): Compare names exactly those, Repair mends them, and the rollup
// answers as the raw samples again.
func TestRollupLevelFindsAndRepairsDamage(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.Postgres)
	insertAll(t, telemetry.NewStore(d.Pool), rollupFixture(t, loc))
	level := series.RollupLevel{}
	is.Equal(level.Name(), "sungrow_rollup")
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	ms, err := level.Compare(ctx, d.Pool, "", time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 0) // ingest kept it right

	damaged := time.Date(2026, 3, 29, 10, 15, 0, 0, time.UTC)
	gone := time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)
	extra := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	_, err = d.Pool.Exec(ctx, `UPDATE sungrow_rollup SET sum_pv_power_w = sum_pv_power_w + 1 WHERE bucket = $1`, damaged)
	is.NoErr(err)
	_, err = d.Pool.Exec(ctx, `DELETE FROM sungrow_rollup WHERE bucket = $1`, gone)
	is.NoErr(err)
	copyBucket(t, d, "sungrow_rollup", damaged, extra)

	ms, err = level.Compare(ctx, d.Pool, rollupDevice, time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 3)
	is.True(ms[0].Bucket.Equal(damaged) && len(ms[0].Fields) == 1 && ms[0].Fields[0].Field == "sum_pv_power_w")
	is.Equal(ms[0].Fields[0].Stored-ms[0].Fields[0].Expected, 1.0)
	is.True(ms[1].Bucket.Equal(gone) && ms[1].Missing)
	is.True(ms[2].Bucket.Equal(extra) && ms[2].Extra)
	is.Equal(ms[0].Level, "sungrow_rollup")
	other, err := level.Compare(ctx, d.Pool, "another-device", time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(other), 0)

	damagedDay, farDay := time.Date(2026, 3, 29, 0, 0, 0, 0, loc), time.Date(2026, 3, 20, 0, 0, 0, 0, loc)
	keptMoneyFor(t, d.Pool, rollupDevice, damagedDay, farDay)
	is.NoErr(level.Repair(ctx, d.Pool, ms))
	ms, err = level.Compare(ctx, d.Pool, "", time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 0)
	is.Equal(keptMoneyDays(t, d.Pool, rollupDevice, damagedDay, farDay), []bool{false, true}) // the repaired day's money is priced again
}

// copyBucket damages table (the rollup's quarter hours or days) with an extra row at
// to, a copy of the one at from.
func copyBucket(t *testing.T, d *testenv.DB, table string, from, to time.Time) {
	t.Helper()
	_, err := d.Pool.Exec(context.Background(), `INSERT INTO `+table+` SELECT device_id, $1, sample_count, sum_pv_power_w,
		max_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w,
		sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, max_pv_daily_kwh
		FROM `+table+` WHERE bucket = $2`, to, from)
	if err != nil {
		t.Fatal(err)
	}
}

// keptMoneyFor stores money for the local days (as the money keeper would: a
// valid-looking row), to see which a repair forgets.
func keptMoneyFor(t *testing.T, pool *pgxpool.Pool, device string, days ...time.Time) {
	t.Helper()
	for _, day := range days {
		if _, err := pool.Exec(context.Background(), `INSERT INTO sungrow_money_daily
			VALUES ($1, $2, 'Europe/Brussels', 1, 720, 24, 0, 0, 1.5, 0.5, 2.5)`, device, day); err != nil {
			t.Fatal(err)
		}
	}
}

// keptMoneyDays is whether money is kept for each of the days.
func keptMoneyDays(t *testing.T, pool *pgxpool.Pool, device string, days ...time.Time) []bool {
	t.Helper()
	out := make([]bool, len(days))
	for i, day := range days {
		if err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM sungrow_money_daily
			WHERE device_id = $1 AND day = $2)`, device, day).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
