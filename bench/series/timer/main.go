// Command timer times every frame of GET /v1/series through the series package (the
// code the handler calls) on one database, and optionally a flat monthly aggregate, and
// prints p50 and p90 per frame. bench/series/run drives it.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
)

//go:embed flat_query.sql
var flatQuery string

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "timer:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "", "database URL")
	raw := flag.Bool("raw", false, "force the raw path")
	flat := flag.Bool("flat", false, "also time frame=all from bench_monthly_flat")
	date := flag.String("date", "", "date the frames cover (YYYY-MM-DD)")
	n := flag.Int("n", 15, "runs per frame")
	label := flag.String("label", "", "label of this run")
	device := flag.String("device", "bench-device", "device whose series are timed")
	tz := flag.String("tz", "UTC", "SUNGROW_TZ the frames are served in")
	keep := flag.Bool("keep", false, "first keep the money of the days that are over, as serve's money keeper does")
	flag.Parse()
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(*url)
	if err != nil {
		return err
	}
	if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" {
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			return db.New(c).SetConfig(ctx, db.SetConfigParams{Name: "search_path", Value: sp})
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	svc, info, err := series.Open(ctx, pool, loc)
	if err != nil {
		return err
	}
	if *raw {
		svc, info.Path = series.NewRaw(pool, loc), series.PathRaw
	}
	if *keep {
		start := time.Now()
		days, err := svc.KeepMoney(ctx, *device)
		if err != nil {
			return err
		}
		fmt.Printf("kept the money of %d days in %s\n", days, time.Since(start).Round(time.Millisecond))
	}
	d, err := svc.ParseDate(*date, time.Now())
	if err != nil {
		return err
	}
	// Without date= a frame covers "today": pinned to noon of -date, so the answer is the
	// same frame served through the default date.
	today, err := svc.ParseDate("", d.Add(12*time.Hour))
	if err != nil {
		return err
	}
	fmt.Printf("%s (path: %s, zone %s, %d runs each)\n", *label, info.Path, loc, *n)
	measure := func(name string, fn func() (int, error)) error {
		var took []time.Duration
		var first time.Duration
		buckets := 0
		for i := 0; i < *n+1; i++ { // the first run warms caches (and keeps past days' money) and is dropped
			start := time.Now()
			b, err := fn()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if i > 0 {
				took = append(took, time.Since(start))
			} else {
				first = time.Since(start)
			}
			buckets = b
		}
		slices.Sort(took)
		fmt.Printf("  %-34s %4d buckets  p50 %9s  p90 %9s  (first %s)\n", name, buckets,
			took[len(took)/2].Round(10*time.Microsecond), took[len(took)*9/10].Round(10*time.Microsecond),
			first.Round(10*time.Microsecond))
		return nil
	}
	for _, frame := range []string{"day", "week", "month", "year", "all"} {
		for _, at := range []struct {
			name string
			date time.Time
		}{{"&date=" + *date, d}, {" (no date)", today}} {
			err := measure("frame="+frame+at.name, func() (int, error) {
				b, err := svc.Series(ctx, *device, frame, at.date)
				return len(b.Buckets), err
			})
			if err != nil {
				return err
			}
		}
	}
	if *flat {
		return measure("frame=all (flat)", func() (int, error) {
			rows, err := pool.Query(ctx, flatQuery, "bench-device",
				time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil {
				return 0, err
			}
			k := 0
			for rows.Next() {
				k++
			}
			rows.Close()
			return k, rows.Err()
		})
	}
	return nil
}
