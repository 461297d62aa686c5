package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
	sungrowsql "github.com/sungrow/sungrow/sql"
)

func migrateCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or inspect the database schema (migrations are embedded)",
	}
	// fn reports whether it (re)built the series aggregates: they are created empty
	// inside goose's transaction and materialized here, after it (a refresh cannot run
	// in a transaction), so every frame is fast and right once the command returns.
	sub := func(use, short string, fn func(context.Context, *goose.Provider, io.Writer) (bool, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var rebuilt bool
				err := withMigrator(cmd.Context(), e, func(p *goose.Provider) (err error) {
					rebuilt, err = fn(cmd.Context(), p, e.stdout)
					return err
				})
				if !rebuilt {
					return err // a failed migration rolled back: the aggregates are as they were
				}
				if rerr := refresh(cmd.Context(), e, "", "", series.Aggregates, time.Now(), true); rerr != nil {
					return errors.Join(err, fmt.Errorf("%w (serve answers from the raw samples meanwhile; run `sungrow refresh` to finish)", rerr))
				}
				return err
			},
		}
	}
	c.AddCommand(
		sub("up", "Apply every pending migration", migrateUp),
		sub("down", "Roll back the newest applied migration", migrateDown),
		sub("status", "List every migration and when it was applied", migrateStatus),
		sub("version", "Print the schema version of the database", migrateVersion),
	)
	return c
}

// withMigrator opens the database named by the configuration and hands fn a migrator.
func withMigrator(ctx context.Context, e *env, fn func(*goose.Provider) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	// Migration 2 builds the daily and monthly aggregates in the zone of sungrow.tz.
	// Migration 8 fills the rollup with a NOTICE per batch: its progress.
	pool, err := openPoolPrintingNotices(ctx, cfg, e.stdout, db.SetConfigParams{Name: "sungrow.tz", Value: cfg.TZ.String()})
	if err != nil {
		return err
	}
	defer pool.Close()
	return withPoolMigrator(pool, fn)
}

func withPoolMigrator(pool *pgxpool.Pool, fn func(*goose.Provider) error) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := sungrowsql.NewMigrator(sqlDB)
	if err != nil {
		return err
	}
	return fn(p)
}

func migrateUp(ctx context.Context, p *goose.Provider, out io.Writer) (bool, error) {
	results, err := p.Up(ctx)
	printResults(out, "applied", results)
	rebuilt := rebuiltAggregates(results)
	if err != nil {
		return rebuilt, fmt.Errorf("migrate up: %w", err)
	}
	if len(results) == 0 {
		v, err := p.GetDBVersion(ctx)
		if err != nil {
			return false, fmt.Errorf("migrate up: %w", err)
		}
		fmt.Fprintf(out, "database is up to date at version %d\n", v)
	}
	return rebuilt, nil
}

func migrateDown(ctx context.Context, p *goose.Provider, out io.Writer) (bool, error) {
	result, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		fmt.Fprintln(out, "nothing to roll back: no migration is applied")
		return false, nil
	}
	var rebuilt bool
	if result != nil {
		printResults(out, "rolled back", []*goose.MigrationResult{result})
		// Rolling back 4 restores migration 2's views, empty; rolling back 2 drops them.
		rebuilt = result.Error == nil && result.Source.Version == sungrowsql.EnergyAggregatesVersion
	}
	if err != nil {
		return rebuilt, fmt.Errorf("migrate down: %w", err)
	}
	return rebuilt, nil
}

// rebuiltAggregates reports whether results applied a migration that creates the
// series aggregates empty.
func rebuiltAggregates(results []*goose.MigrationResult) bool {
	for _, r := range results {
		if r.Error == nil && sungrowsql.BuildsAggregates(r.Source.Version) {
			return true
		}
	}
	return false
}

func migrateStatus(ctx context.Context, p *goose.Provider, out io.Writer) (bool, error) {
	statuses, err := p.Status(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate status: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED AT")
	for _, s := range statuses {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Source.Version, s.Source.Path, applied)
	}
	return false, tw.Flush()
}

func migrateVersion(ctx context.Context, p *goose.Provider, out io.Writer) (bool, error) {
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate version: %w", err)
	}
	fmt.Fprintln(out, v)
	return false, nil
}

func printResults(out io.Writer, verb string, results []*goose.MigrationResult) {
	for _, r := range results {
		if r.Error != nil {
			fmt.Fprintf(out, "FAILED %s: %v\n", r.Source.Path, r.Error)
			continue
		}
		fmt.Fprintf(out, "%s %s (%s)\n", verb, r.Source.Path, r.Duration.Round(time.Millisecond))
	}
}
