package series_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// dailyLevel is the database's sungrow_rollup_daily Level, failing the test without one.
func dailyLevel(t *testing.T, d *testenv.DB) series.Level {
	t.Helper()
	levels, err := series.Levels(context.Background(), d.Pool, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range levels {
		if l.Name() == series.RollupDailyName {
			return l
		}
	}
	t.Fatalf("no %s among the levels %v", series.RollupDailyName, levels)
	return nil
}

func keptZone(t *testing.T, d *testenv.DB) string {
	t.Helper()
	var zone string
	if err := d.Pool.QueryRow(context.Background(), `SELECT zone FROM sungrow_rollup_zone`).Scan(&zone); err != nil {
		t.Fatal(err)
	}
	return zone
}

// sameAsRaw fails the test unless every frame of rollupFrames answers on svc as on the
// raw samples.
func sameAsRaw(t *testing.T, d *testenv.DB, svc *series.Service, loc *time.Location, when string) {
	t.Helper()
	got, want := answers(t, svc), answers(t, series.NewRaw(d.Pool, loc))
	for _, f := range rollupFrames {
		if err := sameJSON(f.frame+" "+f.date, got[f], want[f]); err != nil {
			t.Errorf("%s: rollup and raw samples differ: %v", when, err)
		}
	}
}

// TestRollupDaysFollowTheZone: days migrated in UTC are not used by a serve in
// Brussels (it sums the quarter hours, rightly) until KeepDailyZone builds them again
// in Brussels; from then on the frames read them (damage to a day shows), ingest adds
// to them in Brussels, and a second call changes nothing.
func TestRollupDaysFollowTheZone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.Postgres) // migrated in UTC
	store := telemetry.NewStore(d.Pool)
	samples := rollupFixture(t, loc)
	insertAll(t, store, samples[:len(samples)/2])
	is.Equal(keptZone(t, d), "UTC")

	svc, info, err := series.Open(ctx, d.Pool, loc)
	is.NoErr(err)
	is.Equal(info.Path, series.PathRollup)
	sameAsRaw(t, d, svc, loc, "days kept in UTC, served in Brussels")

	days, err := series.KeepDailyZone(ctx, d.Pool, loc)
	is.NoErr(err)
	is.Equal(days, int64(11)) // 2026-03-18 to 03-28, local days
	is.Equal(keptZone(t, d), "Europe/Brussels")
	insertAll(t, store, samples[len(samples)/2:]) // into Brussels days, across the DST night
	sameAsRaw(t, d, svc, loc, "days rebuilt in Brussels")
	ms, err := dailyLevel(t, d).Compare(ctx, d.Pool, "", time.Time{}, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
	is.NoErr(err)
	is.Equal(len(ms), 0)

	days, err = series.KeepDailyZone(ctx, d.Pool, loc)
	is.NoErr(err)
	is.Equal(days, int64(0)) // kept in Brussels already

	// The month frame reads the days: a damaged day shows in it.
	_, err = d.Pool.Exec(ctx, `UPDATE sungrow_rollup_daily SET sample_count = sample_count + 1000
		WHERE bucket = '2026-03-29T00:00:00+01:00'`)
	is.NoErr(err)
	before := frameTotals(t, series.NewRaw(d.Pool, loc), "month", "2026-03-01")
	after := frameTotals(t, svc, "month", "2026-03-01")
	var diff int64
	for i := range after.Buckets {
		diff += after.Buckets[i].SampleCount - before.Buckets[i].SampleCount
	}
	is.Equal(diff, int64(1000))
}

// TestRollupDailyLevelFindsAndRepairsDamage damages three days (a sum, a missing row,
// an extra row): Compare names exactly those, Repair mends them, and every frame
// answers as the raw samples again.
func TestRollupDailyLevelFindsAndRepairsDamage(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.NewInZone(t, testenv.Postgres, loc.String())
	insertAll(t, telemetry.NewStore(d.Pool), rollupFixture(t, loc))
	level := dailyLevel(t, d)
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	ms, err := level.Compare(ctx, d.Pool, "", time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 0) // ingest kept it right

	damaged := time.Date(2026, 3, 29, 0, 0, 0, 0, loc) // the DST day: 23 hours
	gone := time.Date(2026, 4, 2, 0, 0, 0, 0, loc)
	extra := time.Date(2026, 5, 1, 0, 0, 0, 0, loc)
	_, err = d.Pool.Exec(ctx, `UPDATE sungrow_rollup_daily SET max_pv_daily_kwh = max_pv_daily_kwh + 1 WHERE bucket = $1`, damaged)
	is.NoErr(err)
	_, err = d.Pool.Exec(ctx, `DELETE FROM sungrow_rollup_daily WHERE bucket = $1`, gone)
	is.NoErr(err)
	copyBucket(t, d, "sungrow_rollup_daily", damaged, extra)

	ms, err = level.Compare(ctx, d.Pool, rollupDevice, time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 3)
	is.True(ms[0].Bucket.Equal(damaged) && len(ms[0].Fields) == 1 && ms[0].Fields[0].Field == "max_pv_daily_kwh")
	is.True(ms[1].Bucket.Equal(gone) && ms[1].Missing)
	is.True(ms[2].Bucket.Equal(extra) && ms[2].Extra)
	is.Equal(ms[0].Level, series.RollupDailyName)
	is.Equal(ms[0].Bucket.Location().String(), "Europe/Brussels")

	farDay := time.Date(2026, 3, 20, 0, 0, 0, 0, loc)
	keptMoneyFor(t, d.Pool, rollupDevice, damaged, gone, farDay)
	is.NoErr(level.Repair(ctx, d.Pool, ms))
	ms, err = level.Compare(ctx, d.Pool, "", time.Time{}, far)
	is.NoErr(err)
	is.Equal(len(ms), 0)
	is.Equal(keptMoneyDays(t, d.Pool, rollupDevice, damaged, gone, farDay), []bool{false, false, true}) // repaired days are priced again
	svc, _, err := series.Open(ctx, d.Pool, loc)
	is.NoErr(err)
	sameAsRaw(t, d, svc, loc, "after the repair")
}

// TestRollupDaysRebuiltDuringIngest: a rebuild in another zone while batches arrive
// leaves every day equal to its quarter hours: an ingest waits for the rebuild and
// then adds to the days of the new zone.
func TestRollupDaysRebuiltDuringIngest(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	samples := rollupFixture(t, loc)
	insertAll(t, store, samples[:len(samples)/3])
	rest := samples[len(samples)/3:]
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		part := rest[i*len(rest)/8 : (i+1)*len(rest)/8]
		wg.Go(func() {
			for ; len(part) > 0; part = part[min(len(part), 200):] {
				if _, err := store.Insert(ctx, rollupDevice, part[:min(len(part), 200)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	_, err = series.KeepDailyZone(ctx, d.Pool, loc)
	is.NoErr(err)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	is.Equal(keptZone(t, d), "Europe/Brussels")
	ms, err := dailyLevel(t, d).Compare(ctx, d.Pool, "", time.Time{}, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
	is.NoErr(err)
	is.Equal(len(ms), 0)
	svc, _, err := series.Open(ctx, d.Pool, loc)
	is.NoErr(err)
	sameAsRaw(t, d, svc, loc, "after a rebuild during ingest")
}

// TestIngestLocksQuarterHoursBeforeDays: a batch waiting for a quarter hour holds no
// day yet, the order device removal deletes them in, so the two never deadlock.
func TestIngestLocksQuarterHoursBeforeDays(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	sample := func(ts time.Time) []telemetry.Sample {
		return []telemetry.Sample{{DeviceID: rollupDevice, TS: ts, PVPowerW: 1000, LoadPowerW: 500, ExportPowerW: 500,
			BatterySoCPct: 50, SampleCount: 1}}
	}
	_, err := store.Insert(ctx, rollupDevice, sample(at))
	is.NoErr(err)

	holder, err := d.Pool.Begin(ctx)
	is.NoErr(err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `SELECT 1 FROM sungrow_rollup WHERE bucket = $1 FOR UPDATE`, at)
	is.NoErr(err)
	inserted := make(chan error, 1)
	go func() {
		_, err := store.Insert(ctx, rollupDevice, sample(at.Add(5*time.Second))) // the held quarter hour
		inserted <- err
	}()
	testenv.Await(t, "the batch waiting for the held quarter hour", 10*time.Second, func() bool {
		var waiting bool
		err := d.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%InsertSamplesRollup%')`).Scan(&waiting)
		return err == nil && waiting
	})
	probe, err := d.Pool.Begin(ctx)
	is.NoErr(err)
	_, dayLocked := probe.Exec(ctx, `SELECT 1 FROM sungrow_rollup_daily FOR UPDATE NOWAIT`)
	_ = probe.Rollback(ctx) // every connection back before any assertion can stop the test
	is.NoErr(holder.Rollback(ctx))
	is.NoErr(<-inserted)
	is.NoErr(dayLocked) // the day was free: the batch had not touched it
}

// TestRollupDaysRebuildGivesWayToALongHolder: a rebuild that cannot lock the days
// within its wait says so (ErrDailyZoneBusy) and leaves them in their zone.
func TestRollupDaysRebuildGivesWayToALongHolder(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.Postgres) // days in UTC
	holder, err := d.Pool.Begin(ctx)
	is.NoErr(err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `LOCK TABLE sungrow_rollup_daily IN ROW EXCLUSIVE MODE`) // as an ingest holds it
	is.NoErr(err)
	_, err = series.KeepDailyZone(ctx, d.Pool, loc)
	is.True(errors.Is(err, series.ErrDailyZoneBusy))
	is.NoErr(holder.Rollback(ctx))
	is.Equal(keptZone(t, d), "UTC")
	_, err = series.KeepDailyZone(ctx, d.Pool, loc) // free again
	is.NoErr(err)
	is.Equal(keptZone(t, d), "Europe/Brussels")
}
