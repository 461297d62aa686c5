package series_test

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

const dev = "inverter-late"

// samplesEvery returns samples every step in [from, to), with values that are not
// exact in binary, as real readings are.
func samplesEvery(from, to time.Time, step time.Duration) []telemetry.Sample {
	var out []telemetry.Sample
	for ts, i := from, 0; ts.Before(to); ts, i = ts.Add(step), i+1 {
		out = append(out, telemetry.Sample{DeviceID: dev, TS: ts,
			PVPowerW: 0.1 * float64(i%977), BatteryPowerW: 0.3*float64(i%311) - 40.7,
			BatterySoCPct: 0.7 * float64(i%139), LoadPowerW: 1.1 * float64(i%521),
			ExportPowerW: 0.1*float64(i%613) - 25.3, SampleCount: int32(1 + i%3)})
	}
	return out
}

func count(samples []telemetry.Sample) (n int64) {
	for _, s := range samples {
		n += int64(s.SampleCount)
	}
	return n
}

// materialized is what agg holds of every device over [from, to) without real-time
// aggregation.
func materialized(t *testing.T, pool *pgxpool.Pool, agg series.Aggregate, from, to time.Time) int64 {
	t.Helper()
	return testenv.MaterializedSamples(t, pool, string(agg), "", from, to)
}

// TestRefresherMaterializesLateSamplesForGood covers the two ways late samples went
// missing: a device offline from Monday 10:00 whose buffer arrives after a refresh
// (the daily refresh window was cut at the hourly watermark, too small to refresh,
// and retried forever), and a day delivered above the watermark that the next policy
// run then moved past without materializing it.
func TestRefresherMaterializesLateSamplesForGood(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.TimescaleDB)
	store := telemetry.NewStore(d.Pool)
	day := func(n int) time.Time { return time.Date(2026, 3, 2+n, 0, 0, 0, 0, time.UTC) } // 0: Monday
	now := day(2).Add(12*time.Hour + 30*time.Minute)                                      // Wednesday 12:30

	monMorning := samplesEvery(day(0), day(0).Add(10*time.Hour), 10*time.Minute)
	_, err := store.Insert(ctx, dev, monMorning)
	is.NoErr(err)
	for _, agg := range series.Aggregates { // what `sungrow refresh` does
		from, to := series.Window(agg, time.Time{}, time.Time{}, now, time.UTC)
		is.NoErr(series.Refresh(ctx, d.Pool, agg, from, to))
	}

	var logs testenv.LogBuffer
	r := series.NewRefresher(d.Pool, time.UTC, 10*time.Millisecond,
		slog.New(slog.NewJSONHandler(&logs, nil)), func() time.Time { return now })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { stop(); <-done }()

	ingest := func(samples []telemetry.Sample) { // as the ingest handler does
		_, err := store.Insert(ctx, dev, samples)
		is.NoErr(err)
		r.Touched(dev, samples[0].TS, samples[len(samples)-1].TS)
	}
	monEvening := samplesEvery(day(0).Add(10*time.Hour), day(1), 10*time.Minute)
	tuesday := samplesEvery(day(1), day(2), 10*time.Minute)
	ingest(monEvening)
	ingest(tuesday)

	want := count(monMorning) + count(monEvening) + count(tuesday)
	deadline := time.Now().Add(30 * time.Second)
	for materialized(t, d.Pool, series.Daily, day(0), day(2)) != want {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the daily aggregate holds %d of %d samples; log:\n%s",
				materialized(t, d.Pool, series.Daily, day(0), day(2)), want, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	is.Equal(materialized(t, d.Pool, series.Hourly, day(0), day(2)), want)
	is.True(!strings.Contains(logs.String(), "postponed")) // no round failed

	// The hourly policy runs, as TimescaleDB's scheduler does every hour.
	is.NoErr(series.Refresh(ctx, d.Pool, series.Hourly, now.Truncate(time.Hour).Add(-3*time.Hour),
		now.Truncate(time.Hour).Add(-time.Hour)))

	// Every sample is still in every frame, and the aggregates answer what the raw
	// samples do.
	agg, info, err := series.Open(ctx, d.Pool, time.UTC)
	is.NoErr(err)
	is.Equal(info.Path, series.PathAggregates)
	raw := series.NewRaw(d.Pool, time.UTC)
	for _, c := range []struct {
		frame string
		date  time.Time
		want  int64
	}{
		{"day", day(0), count(monMorning) + count(monEvening)},
		{"day", day(1), count(tuesday)},
		{"week", day(0), want},
		{"month", day(0), want},
		{"all", day(0), want},
	} {
		aggRes, err := agg.Series(ctx, dev, c.frame, c.date)
		is.NoErr(err)
		fromAgg := aggRes.Buckets
		var got int64
		for _, b := range fromAgg {
			got += b.SampleCount
		}
		is.Equal(got, c.want) // nothing vanished
		rawRes, err := raw.Series(ctx, dev, c.frame, c.date)
		is.NoErr(err)
		fromRaw := rawRes.Buckets
		is.Equal(len(fromAgg), len(fromRaw))
		for i := range fromAgg {
			sameBucket(t, fromAgg[i], fromRaw[i]) // the same answer on both paths
		}
	}
}

// sameBucket checks two buckets agree: float sums added in another order may differ
// in their last bits, so averages and energy are compared to 1e-12 relative.
func sameBucket(t *testing.T, a, b series.Bucket) {
	t.Helper()
	if !a.Bucket.Equal(b.Bucket) || a.SampleCount != b.SampleCount || a.MaxPVPowerW != b.MaxPVPowerW {
		t.Fatalf("buckets differ: %+v and %+v", a, b)
	}
	for _, p := range [][2]float64{
		{a.AvgPVPowerW, b.AvgPVPowerW}, {a.AvgBatteryPowerW, b.AvgBatteryPowerW},
		{a.AvgBatterySoCPct, b.AvgBatterySoCPct}, {a.AvgLoadPowerW, b.AvgLoadPowerW},
		{a.AvgExportPowerW, b.AvgExportPowerW},
		{a.PVKWh, b.PVKWh}, {a.LoadKWh, b.LoadKWh}, {a.GridImportKWh, b.GridImportKWh},
		{a.GridExportKWh, b.GridExportKWh}, {a.BatteryChargeKWh, b.BatteryChargeKWh},
		{a.BatteryDischargeKWh, b.BatteryDischargeKWh},
	} {
		if math.Abs(p[0]-p[1]) > 1e-12*math.Max(math.Abs(p[0]), math.Abs(p[1])) {
			t.Fatalf("averages or energy differ: %+v and %+v", a, b)
		}
	}
}
