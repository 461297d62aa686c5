package telemetry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

func TestLatestIsServedByThePrimaryKey(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, device := range []string{"a", "b", "c"} {
		samples := make([]telemetry.Sample, 1000)
		for i := range samples {
			samples[i] = telemetry.Sample{DeviceID: device, TS: start.Add(time.Duration(i) * 5 * time.Second), SampleCount: 1}
		}
		n, err := store.Insert(ctx, device, samples)
		is.NoErr(err)
		is.Equal(n, int64(1000))
	}
	_, err := d.Pool.Exec(ctx, "ANALYZE sungrow_samples")
	is.NoErr(err)

	latest, err := store.Latest(ctx, "b")
	is.NoErr(err)
	is.True(latest.TS.Equal(start.Add(999 * 5 * time.Second)))

	// The plan of the very query Latest runs walks the primary key backwards.
	rows, err := d.Pool.Query(ctx, "EXPLAIN SELECT * FROM sungrow_samples WHERE device_id = $1 ORDER BY ts DESC LIMIT 1", "b")
	is.NoErr(err)
	var plan strings.Builder
	for rows.Next() {
		var line string
		is.NoErr(rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	is.NoErr(rows.Err())
	is.True(strings.Contains(plan.String(), "Index Scan Backward using sungrow_samples_pkey")) // no sort, no scan of the table

	_, err = store.Latest(ctx, "nobody")
	is.Equal(err, telemetry.ErrNotFound)

	// Many devices in one round trip: the newest of each that has samples.
	many, err := store.LatestOf(ctx, []string{"c", "nobody", "a"})
	is.NoErr(err)
	is.Equal(len(many), 2)
	for _, smp := range many {
		is.True(smp.DeviceID == "a" || smp.DeviceID == "c")
		is.True(smp.TS.Equal(start.Add(999 * 5 * time.Second)))
	}
}

func TestDevicesListsEachDeviceWithSamplesOnce(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		store := telemetry.NewStore(d.Pool)
		none, err := store.Devices(ctx)
		is.NoErr(err)
		is.Equal(len(none), 0)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, device := range []string{"c", "a/b", "a", "é+#"} {
			samples := make([]telemetry.Sample, 50)
			for i := range samples {
				samples[i] = telemetry.Sample{DeviceID: device, TS: start.Add(time.Duration(i) * 5 * time.Second), SampleCount: 1}
			}
			_, err := store.Insert(ctx, device, samples)
			is.NoErr(err)
		}
		got, err := store.Devices(ctx)
		is.NoErr(err)
		is.Equal(len(got), 4)
		for _, want := range []string{"a", "a/b", "c", "é+#"} {
			is.True(slices.Contains(got, want))
		}
	})
}
