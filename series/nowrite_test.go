package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

// tableWrites is every table of the test's own with its rows and the rows ever
// inserted, updated or deleted in it (pg_stat_user_tables); on TimescaleDB the chunks
// of its hypertables and of its aggregates' materialization hypertables too.
const tableWrites = `
SELECT st.schemaname || '.' || st.relname, st.n_tup_ins + st.n_tup_upd + st.n_tup_del
FROM pg_stat_user_tables st
WHERE st.schemaname = current_schema()`

const tableWritesTimescale = `
WITH hyper AS (
    SELECT hypertable_schema AS s, hypertable_name AS n FROM timescaledb_information.hypertables
    WHERE hypertable_schema = current_schema()
    UNION ALL
    SELECT materialization_hypertable_schema, materialization_hypertable_name
    FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema()
), rels AS (
    SELECT s, n FROM hyper
    UNION SELECT c.chunk_schema, c.chunk_name FROM timescaledb_information.chunks c
          JOIN hyper h ON c.hypertable_schema = h.s AND c.hypertable_name = h.n
)
SELECT st.schemaname || '.' || st.relname, st.n_tup_ins + st.n_tup_upd + st.n_tup_del
FROM pg_stat_user_tables st
WHERE st.schemaname = current_schema()
   OR (st.schemaname, st.relname) IN (SELECT s, n FROM rels)`

// snapshotTables returns each table's row count and write counter, after making the
// connection's own counters public (the one connection that ran the reads).
func snapshotTables(t *testing.T, pool *pgxpool.Pool, timescale bool) map[string][2]int64 {
	t.Helper()
	ctx := context.Background()
	// Counters reach pg_stat_user_tables when a backend flushes them; this makes the
	// connection flush at once, after this statement.
	if _, err := pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
		t.Fatal(err)
	}
	q := tableWrites
	if timescale {
		q = tableWritesTimescale
	}
	rows, err := pool.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		writes[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for name, n := range writes {
		var count int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&count); err != nil {
			t.Fatal(err)
		}
		out[name] = [2]int64{count, n}
	}
	return out
}

// TestSeriesReadWritesNothing reads every frame with prices in force, on both
// backends (on TimescaleDB from the aggregates, partly materialized, with days whose
// money is kept and days whose money is not), and finds every table's rows and write
// counters as they were: a read may run on a read-only replica.
func TestSeriesReadWritesNothing(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	var samples []telemetry.Sample
	for _, s := range costFixture() {
		if s.TS.Before(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) {
			samples = append(samples, s)
		}
	}
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.NewEmpty(t, b)
			is.NoErr(db.New(d.Pool).SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: loc.String()}))
			testenv.Migrate(t, d.Pool)
			_, err := telemetry.NewStore(d.Pool).Insert(ctx, costDevice, samples)
			is.NoErr(err)
			setPrices(t, tariff.NewStore(d.Pool), loc)
			// One connection for the reads and the counters, so what the reads did
			// is flushed before the counters are read.
			pool := d.Pool
			if !d.Timescale {
				cfg, err := pgxpool.ParseConfig(d.URL)
				is.NoErr(err)
				cfg.MaxConns = 1
				pool, err = pgxpool.NewWithConfig(ctx, cfg)
				is.NoErr(err)
				t.Cleanup(pool.Close)
			}
			svc, info, err := series.Open(ctx, pool, loc)
			is.NoErr(err)
			clock := func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
			svc = svc.WithInterval(series.FixedInterval(costInterval)).WithClock(clock)
			if d.Timescale {
				is.Equal(info.Path, series.PathAggregates)
				for _, agg := range series.Aggregates {
					is.NoErr(series.Refresh(ctx, pool, agg, time.Time{}, time.Date(2026, 2, 20, 0, 0, 0, 0, loc)))
				}
				// Keep the money of the days up to 2026-02-01 only: reads meet both.
				kept, err := svc.WithClock(func() time.Time { return time.Date(2026, 2, 1, 0, 0, 0, 0, loc) }).KeepMoney(ctx, costDevice)
				is.NoErr(err)
				is.True(kept > 25)
			}
			before := snapshotTables(t, pool, d.Timescale)
			is.True(len(before) > 5)
			for _, f := range []struct{ frame, date string }{
				{"day", "2026-01-15"}, {"day", "2026-03-01"}, {"week", "2026-01-28"}, {"week", "2026-02-26"},
				{"month", "2026-01-10"}, {"month", "2026-02-10"}, {"month", "2026-03-05"},
				{"year", "2026-02-01"}, {"all", ""},
			} {
				date, err := svc.ParseDate(f.date, clock())
				is.NoErr(err)
				res, err := svc.Series(ctx, costDevice, f.frame, date)
				is.NoErr(err)
				is.True(res.Pricing.Currency != nil) // prices are in force: money was read
				is.True(res.Totals.NetCost != nil)
			}
			after := snapshotTables(t, pool, d.Timescale)
			for name, was := range before {
				if now := after[name]; now != was {
					t.Errorf("%s: rows and writes were %v before the reads, %v after", name, was, now)
				}
			}
			is.Equal(len(after), len(before))
		})
	}
}
