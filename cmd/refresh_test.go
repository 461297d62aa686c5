package cmd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

func TestRefresh(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.New(t, b)
			var samples []telemetry.Sample
			for ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)); ts = ts.Add(10 * time.Minute) {
				samples = append(samples, telemetry.Sample{DeviceID: "inverter-01", TS: ts, PVPowerW: 1, SampleCount: 1})
			}
			_, err := telemetry.NewStore(d.Pool).Insert(ctx, "inverter-01", samples)
			is.NoErr(err)
			d.Pool.Close() // the command opens its own connection
			env := map[string]string{"DATABASE_URL": d.URL}

			out, _, err := run(ctx, env, "refresh")
			is.NoErr(err)
			if !d.Timescale {
				is.True(strings.Contains(out, "nothing to refresh")) // plain PostgreSQL: says so, exit 0
				return
			}
			for _, agg := range []string{"sungrow_hourly", "sungrow_daily", "sungrow_monthly"} {
				is.True(strings.Contains(out, "refreshed "+agg)) // prints what it refreshed
			}
			is.True(strings.Index(out, "sungrow_hourly") < strings.Index(out, "sungrow_daily"))
			is.True(strings.Index(out, "sungrow_daily") < strings.Index(out, "sungrow_monthly"))

			pool, err := pgxpool.New(ctx, d.URL)
			is.NoErr(err)
			for agg, want := range map[string]int{"sungrow_hourly": 48, "sungrow_daily": 2, "sungrow_monthly": 1} {
				var schema, table string
				is.NoErr(pool.QueryRow(ctx, `SELECT materialization_hypertable_schema, materialization_hypertable_name
					FROM timescaledb_information.continuous_aggregates
					WHERE view_name = $1 AND view_schema = current_schema()`, agg).Scan(&schema, &table))
				var n int
				is.NoErr(pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %q.%q", schema, table)).Scan(&n))
				is.Equal(n, want) // rows materialized, not only visible through the view
			}
			pool.Close()

			_, _, err = run(ctx, env, "refresh", "weekly")
			is.True(err != nil) // unknown aggregate
			_, _, err = run(ctx, env, "refresh", "--from", "yesterday")
			is.True(err != nil) // bad time
			out, _, err = run(ctx, env, "refresh", "--from", "2026-03-01", "--to", "2026-03-02T00:00:00Z", "daily", "hourly")
			is.NoErr(err)
			is.True(strings.Index(out, "sungrow_hourly") < strings.Index(out, "sungrow_daily")) // finest first
		})
	}
}

// TestRefreshDatabaseError: a database that cannot be reached is a non-zero exit.
func TestRefreshDatabaseError(t *testing.T) {
	_, _, err := run(context.Background(), map[string]string{
		"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?connect_timeout=2"}, "refresh")
	if err == nil {
		t.Fatal("refresh against an unreachable database succeeded")
	}
}
