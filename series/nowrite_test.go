package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

// tables lists the test's own tables: of its schema and, on TimescaleDB, the chunks
// of its hypertables and of its aggregates' materialization hypertables.
const tables = `
SELECT schemaname || '.' || relname FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY 1`

const tablesTimescale = `
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
SELECT st.schemaname || '.' || st.relname FROM pg_stat_user_tables st
WHERE st.schemaname = current_schema() OR (st.schemaname, st.relname) IN (SELECT s, n FROM rels)
ORDER BY 1`

// writesInTx is the rows the current transaction inserted, updated or deleted, per
// table: counted as it goes (pg_stat_xact_user_tables), so no flush is awaited.
const writesInTx = `
SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del
FROM pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0`

// rowCounts is every table's row count.
func rowCounts(t *testing.T, conn db.DBTX, timescale bool) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	q := tables
	if timescale {
		q = tablesTimescale
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, name := range names {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	return out
}

// current is the schema the test's tables are in.
func current(t *testing.T, tx pgx.Tx) string {
	t.Helper()
	var s string
	if err := tx.QueryRow(context.Background(), "SELECT current_schema()").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// writes is what the transaction wrote so far, per table.
func writes(t *testing.T, tx pgx.Tx) map[string]int64 {
	t.Helper()
	rows, err := tx.Query(context.Background(), writesInTx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeriesReadWritesNothing reads every frame with prices in force, on both
// backends (on TimescaleDB from the aggregates, partly materialized, with days whose
// money is kept and days whose money is not): the reads' transaction wrote no row of
// any table (pg_stat_xact_user_tables) and every table holds the rows it held before.
// A read may run on a read-only replica.
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
			svc, info, err := series.Open(ctx, d.Pool, loc)
			is.NoErr(err)
			clock := func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
			svc = svc.WithInterval(series.FixedInterval(costInterval)).WithClock(clock)
			if d.Timescale {
				is.Equal(info.Path, series.PathAggregates)
				for _, agg := range series.Aggregates {
					is.NoErr(series.Refresh(ctx, d.Pool, agg, time.Time{}, time.Date(2026, 2, 20, 0, 0, 0, 0, loc)))
				}
				// Keep the money of the days up to 2026-02-01 only: reads meet both.
				kept, err := svc.WithClock(func() time.Time { return time.Date(2026, 2, 1, 0, 0, 0, 0, loc) }).KeepMoney(ctx, costDevice)
				is.NoErr(err)
				is.True(kept > 25)
			}
			before := rowCounts(t, d.Pool, d.Timescale)
			is.True(len(before) > 5)

			// The reads in one transaction, whose own write counters show what they did.
			tx, err := d.Pool.Begin(ctx)
			is.NoErr(err)
			defer tx.Rollback(ctx)
			reads := svc.WithReads(tx)
			// PGlite never flushes a session's counters, so its xact view holds all
			// the session wrote: what counts is what changes across the reads.
			wrote := writes(t, tx)
			for _, f := range []struct{ frame, date string }{
				{"day", "2026-01-15"}, {"day", "2026-03-01"}, {"week", "2026-01-28"}, {"week", "2026-02-26"},
				{"month", "2026-01-10"}, {"month", "2026-02-10"}, {"month", "2026-03-05"},
				{"year", "2026-02-01"}, {"all", ""},
			} {
				date, err := reads.ParseDate(f.date, clock())
				is.NoErr(err)
				res, err := reads.Series(ctx, costDevice, f.frame, date)
				is.NoErr(err)
				is.True(res.Pricing.Currency != nil) // prices are in force: money was read
				is.True(res.Totals.NetCost != nil)
			}
			for name, n := range writes(t, tx) {
				if n != wrote[name] {
					t.Errorf("%s: the reads wrote %d rows", name, n-wrote[name])
				}
			}
			if d.Timescale {
				// The counters see writes: the keeper's, rolled back.
				_, err := svc.WithReads(tx).WithClock(clock).KeepMoney(ctx, costDevice)
				is.NoErr(err)
				is.True(writes(t, tx)[current(t, tx)+".sungrow_money_daily"] > wrote[current(t, tx)+".sungrow_money_daily"])
			}
			is.NoErr(tx.Rollback(ctx))

			after := rowCounts(t, d.Pool, d.Timescale)
			for name, was := range before {
				if now := after[name]; now != was {
					t.Errorf("%s: %d rows before the reads, %d after", name, was, now)
				}
			}
			is.Equal(len(after), len(before))
		})
	}
}
