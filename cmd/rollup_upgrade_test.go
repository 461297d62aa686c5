package cmd_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
	"github.com/sungrow/sungrow/series"
	sungrowsql "github.com/sungrow/sungrow/sql"
	"github.com/sungrow/sungrow/telemetry"
)

// TestUpgradeFillsTheRollup: a plain PostgreSQL database of the previous release
// (migration 7) with 60 days of 5 s samples is upgraded by `migrate up`, which fills
// the rollup and its days printing its progress within 60 s; no sample is lost and every frame
// answers from the rollup as the raw samples did; `down` drops it, `up` again fills it.
func TestUpgradeFillsTheRollup(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.NewEmpty(t, testenv.Postgres)
	sqlDB := stdlib.OpenDBFromPool(d.Pool)
	p, err := sungrowsql.NewMigrator(sqlDB)
	is.NoErr(err)
	_, err = p.UpTo(ctx, 7)
	is.NoErr(err)
	is.NoErr(sqlDB.Close())
	days := 60
	if testing.Short() {
		days = 3
	}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range days {
		_, err := d.Pool.Exec(ctx, fillDay, first.AddDate(0, 0, i))
		is.NoErr(err)
	}
	raw := series.NewRaw(d.Pool, time.UTC)
	frames := []string{"day", "week", "month", "year", "all"}
	dates := []time.Time{first, first.AddDate(0, 0, days/2), first.AddDate(0, 0, days-1)}
	before := map[string]series.Result{}
	for _, f := range frames {
		for _, dt := range dates {
			res, err := raw.Series(ctx, "inverter-old", f, dt)
			is.NoErr(err)
			before[f+dt.Format(time.DateOnly)] = res
		}
	}
	env := map[string]string{"DATABASE_URL": d.URL}
	check := func(stage string) {
		t.Helper()
		pool, err := pgxpool.New(ctx, d.URL)
		is.NoErr(err)
		defer pool.Close()
		var n int64
		is.NoErr(pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&n))
		is.Equal(n, int64(days*17280)) // no sample lost
		svc, info, err := series.Open(ctx, pool, time.UTC)
		is.NoErr(err)
		is.Equal(info.Path, series.PathRollup)
		for _, f := range frames {
			for _, dt := range dates {
				got, err := svc.Series(ctx, "inverter-old", f, dt)
				is.NoErr(err)
				if want := before[f+dt.Format(time.DateOnly)]; len(got.Buckets) == 0 || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s frame=%s date=%s: rollup %+v, raw samples before %+v", stage, f, dt.Format(time.DateOnly), got.Totals, want.Totals)
				}
			}
		}
	}
	began := time.Now()
	out, err := runCLI(env, "migrate", "up")
	took := time.Since(began)
	is.NoErr(err)
	is.True(strings.Contains(out, "applied 00008_rollup.sql"))
	is.True(strings.Contains(out, "sungrow_rollup: inverter-old 2026-01:")) // progress, a batch a month
	is.True(strings.Contains(out, "applied 00011_rollup_daily.sql"))
	is.True(strings.Contains(out, fmt.Sprintf("sungrow_rollup_daily: %d days in UTC", days))) // its local days
	t.Logf("migrate up on %d days of 5 s samples took %s:\n%s", days, took.Round(time.Millisecond), out)
	if !testing.Short() && took > 60*time.Second {
		t.Errorf("migrate up took %s, want at most 60 s", took)
	}
	check("after up")

	// Down to the previous release, one migration at a time (later ones first).
	for !strings.Contains(out, "rolled back 00008_rollup.sql") {
		out, err = runCLI(env, "migrate", "down")
		is.NoErr(err)
		is.True(!strings.Contains(out, "rolled back 00007")) // passed 8 without dropping the rollup
	}
	pool, err := pgxpool.New(ctx, d.URL)
	is.NoErr(err)
	_, info, err := series.Open(ctx, pool, time.UTC)
	is.NoErr(err)
	is.Equal(info.Path, series.PathRaw) // the table is gone
	pool.Close()
	_, err = runCLI(env, "migrate", "up")
	is.NoErr(err)
	check("after down and up")
}

// TestServeRebuildsTheRollupDaysInANewZone: a plain PostgreSQL database migrated in UTC
// and served in Europe/Brussels gets its days built again in Brussels at serve's start,
// and says so once; a second start finds them in Brussels already.
func TestServeRebuildsTheRollupDaysInANewZone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres) // migrated in UTC
	var samples []telemetry.Sample
	for ts := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC); ts.Day() == 29; ts = ts.Add(5 * time.Minute) { // the DST day
		samples = append(samples, telemetry.Sample{DeviceID: "inverter-tz", TS: ts, PVPowerW: 1000, LoadPowerW: 400,
			ExportPowerW: 600, BatterySoCPct: 50, SampleCount: 1})
	}
	_, err := telemetry.NewStore(d.Pool).Insert(ctx, "inverter-tz", samples)
	is.NoErr(err)
	zone := func() (z string) {
		is.NoErr(d.Pool.QueryRow(ctx, "SELECT zone FROM sungrow_rollup_zone").Scan(&z))
		return z
	}
	days := func() (n int) {
		is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_rollup_daily").Scan(&n))
		return n
	}
	is.Equal(zone(), "UTC")
	env := map[string]string{"DATABASE_URL": d.URL, "SUNGROW_TZ": "Europe/Brussels", "AGGREGATE_AUDIT_S": "0"}
	s := testserve.StartServe(t, env)
	is.True(strings.Contains(s.Logs.String(), "rebuilt the rollup's days in SUNGROW_TZ"))
	is.Equal(zone(), "Europe/Brussels")
	is.Equal(days(), 2) // a UTC day is two local days in Brussels
	again := testserve.StartServe(t, env)
	is.True(!strings.Contains(again.Logs.String(), "rebuilt the rollup's days"))
}
