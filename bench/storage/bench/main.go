// Command bench measures what compression does to one device's year of 5-second
// samples on a database migrated by sungrow: bytes per sample before and after, the
// time the compression policy takes, the newest-sample query and every series frame
// before and after (and that each frame's JSON is unchanged), and ingest into the
// current chunk with compression in place against a schema without it, in
// alternating rounds. bench/storage/run drives it.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/storage"
	"github.com/sungrow/sungrow/telemetry"
)

//go:embed load.sql
var loadSQL string

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" {
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			return db.New(c).SetConfig(ctx, db.SetConfigParams{Name: "search_path", Value: sp})
		}
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

func run() error {
	url := flag.String("url", "", "database (schema) migrated by sungrow, to load a year into")
	plainURL := flag.String("without-url", "", "schema migrated without migration 5, for the ingest comparison")
	months := flag.Int("months", 12, "months of 5-second samples to load, from 2025-01")
	n := flag.Int("n", 9, "runs per query")
	rounds := flag.Int("rounds", 6, "ingest rounds per side")
	loadOnly := flag.Bool("load-only", false, "load and print the size, nothing else (plain PostgreSQL)")
	flag.Parse()
	ctx := context.Background()
	pool, err := open(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Load month by month: one statement per month keeps each transaction small.
	q := strings.NewReplacer(":'from'", "$1", ":'to'", "$2").Replace(loadSQL)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	for m := range *months {
		if _, err := pool.Exec(ctx, q, start.AddDate(0, m, 0), start.AddDate(0, m+1, 0)); err != nil {
			return fmt.Errorf("load month %d: %w", m+1, err)
		}
	}
	if _, err := pool.Exec(ctx, "ANALYZE sungrow_samples"); err != nil {
		return err
	}
	var rows int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&rows); err != nil {
		return err
	}
	fmt.Printf("loaded %d samples (%d months) in %s\n", rows, *months, time.Since(began).Round(time.Second))
	sizes := func(label string) (int64, error) {
		rels, _, err := storage.Sizes(ctx, pool)
		if err != nil {
			return 0, err
		}
		b := rels[0].Bytes
		fmt.Printf("%s: sungrow_samples %d bytes, %.1f bytes/sample\n", label, b, float64(b)/float64(rows))
		return b, nil
	}
	if *loadOnly {
		_, err := sizes("on disk")
		return err
	}
	before, err := sizes("before compression")
	if err != nil {
		return err
	}

	end := start.AddDate(0, *months, 0)
	now := end.Add(36 * time.Hour) // frames as of a day and a half after the data
	for _, agg := range series.Aggregates {
		from, to := series.Window(agg, time.Time{}, time.Time{}, now, time.UTC)
		if err := series.Refresh(ctx, pool, agg, from, to); err != nil {
			return err
		}
	}
	svc, info, err := series.Open(ctx, pool, time.UTC)
	if err != nil {
		return err
	}
	date := end.AddDate(0, 0, -17)
	frames, err := timeQueries(ctx, svc, telemetry.NewStore(pool), date, *n, "before compression", info.Path)
	if err != nil {
		return err
	}

	var job int32
	if err := pool.QueryRow(ctx, `SELECT job_id FROM timescaledb_information.jobs
		WHERE proc_name = 'policy_compression' AND hypertable_name = 'sungrow_samples'
		  AND hypertable_schema = current_schema()`).Scan(&job); err != nil {
		return fmt.Errorf("find the compression policy: %w", err)
	}
	began = time.Now()
	if err := db.New(pool).RunJob(ctx, job); err != nil {
		return fmt.Errorf("run the compression policy: %w", err)
	}
	fmt.Printf("compression policy (CALL run_job) took %s\n", time.Since(began).Round(time.Millisecond))
	if _, err := pool.Exec(ctx, "ANALYZE sungrow_samples"); err != nil {
		return err
	}
	after, err := sizes("after compression")
	if err != nil {
		return err
	}
	fmt.Printf("compression: %.1f× smaller\n", float64(before)/float64(after))
	framesAfter, err := timeQueries(ctx, svc, telemetry.NewStore(pool), date, *n, "after compression", info.Path)
	if err != nil {
		return err
	}
	for name, j := range frames {
		if framesAfter[name] != j {
			return fmt.Errorf("frame=%s changed with compression", name)
		}
	}
	fmt.Println("every frame's JSON is identical before and after compression")
	if *plainURL == "" {
		return nil
	}
	pool.Close() // the test server serves one connection at a time
	return ingestRounds(ctx, *url, *plainURL, *rounds)
}

// timeQueries times the newest-sample query and every frame, and returns each frame's JSON.
func timeQueries(ctx context.Context, svc *series.Service, store *telemetry.Store, date time.Time, n int,
	label string, path series.Path) (map[string]string, error) {
	out := map[string]string{}
	fmt.Printf("%s (series path: %s), p50 of %d runs:\n", label, path, n)
	p50 := func(fn func() error) (time.Duration, error) {
		var took []time.Duration
		for i := range n + 1 { // the first run warms caches and is dropped
			t := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if i > 0 {
				took = append(took, time.Since(t))
			}
		}
		slices.Sort(took)
		return took[len(took)/2], nil
	}
	d, err := p50(func() error { _, err := store.Latest(ctx, "bench-device"); return err })
	if err != nil {
		return nil, err
	}
	fmt.Printf("  newest sample  %8.2f ms\n", ms(d))
	local := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, svc.Location())
	for _, f := range []string{"day", "week", "month", "year", "all"} {
		var res series.Result
		d, err := p50(func() error {
			var err error
			res, err = svc.Series(ctx, "bench-device", f, local)
			return err
		})
		if err != nil {
			return nil, err
		}
		j, _ := json.Marshal(res)
		out[f] = string(j)
		fmt.Printf("  frame=%-6s %8.2f ms (%d buckets)\n", f, ms(d), len(res.Buckets))
	}
	return out, nil
}

// ingestRounds inserts 1000-sample batches into the current chunk, alternating between
// the schema with compression (its old chunks compressed, the policy in place) and
// one without, and prints the median rate of each and their ratio.
func ingestRounds(ctx context.Context, withURL, withoutURL string, rounds int) error {
	const batches, size = 10, 1000
	base := time.Now().UTC().Truncate(24 * time.Hour)
	next := map[string]int{}
	// Each round connects, then is timed: one connection at a time on the test server.
	round := func(name, url string) (float64, error) {
		pool, err := open(ctx, url)
		if err != nil {
			return 0, err
		}
		defer pool.Close()
		if err := pool.Ping(ctx); err != nil {
			return 0, err
		}
		store := telemetry.NewStore(pool)
		t := time.Now()
		for range batches {
			samples := make([]telemetry.Sample, size)
			for i := range samples {
				samples[i] = telemetry.Sample{DeviceID: "ingest-device", TS: base.Add(time.Duration(next[name]) * time.Second),
					PVPowerW: float64(next[name] % 5000), BatterySoCPct: 50, LoadPowerW: 400, SampleCount: 1}
				next[name]++
			}
			if _, err := store.Insert(ctx, "ingest-device", samples); err != nil {
				return 0, err
			}
		}
		return batches * size / time.Since(t).Seconds(), nil
	}
	var w, wo []float64
	for i := range rounds {
		sides := []string{"with", "without"}
		if i%2 == 1 { // alternate which side goes first
			sides = []string{"without", "with"}
		}
		for _, side := range sides {
			url := withURL
			if side == "without" {
				url = withoutURL
			}
			rate, err := round(side, url)
			if err != nil {
				return err
			}
			if side == "with" {
				w = append(w, rate)
			} else {
				wo = append(wo, rate)
			}
		}
	}
	slices.Sort(w)
	slices.Sort(wo)
	mw, mwo := w[len(w)/2], wo[len(wo)/2]
	fmt.Printf("ingest into the current chunk, median of %d rounds of %d×%d samples: with compression %.0f samples/s, without %.0f samples/s, ratio %.2f\n",
		rounds, batches, size, mw, mwo, mw/mwo)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
