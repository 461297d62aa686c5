package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
	sungrowsql "github.com/sungrow/sungrow/sql"
	"github.com/sungrow/sungrow/storage"
)

func migrateCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or inspect the database schema (migrations are embedded)",
	}
	// fn reports whether it (re)built the series aggregates: they are created empty
	// inside goose's transaction and materialized here, after it (a refresh cannot run
	// in a transaction), so every frame is fast and right once the command returns.
	sub := func(use, short string, fn func(context.Context, migrator, io.Writer) (bool, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var rebuilt bool
				err := withMigrator(cmd.Context(), e, func(m migrator) (err error) {
					rebuilt, err = fn(cmd.Context(), m, e.stdout)
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

// migrator is goose's provider and the connection pool beneath it, on which the jobs
// are paused between goose's steps.
type migrator struct {
	p    *goose.Provider
	conn db.DBTX
	// paused is what this command paused, to tell it apart from jobs found paused.
	paused map[int32]bool
}

// withMigrator opens the database named by the configuration and hands fn a migrator.
func withMigrator(ctx context.Context, e *env, fn func(migrator) error) error {
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
	return withPoolMigrator(pool, func(p *goose.Provider) error { return fn(migrator{p: p, conn: pool, paused: map[int32]bool{}}) })
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

// migrateUp applies the pending migrations one at a time with sungrow's jobs paused
// before each: a migration can add jobs the scheduler starts at once (2 adds the
// refresh policies) while the next rebuilds what they refresh (4), and DDL racing a
// running job fails. Whatever happens, every job is scheduled again at the end, also
// those an interrupted run left paused.
func migrateUp(ctx context.Context, m migrator, out io.Writer) (rebuilt bool, err error) {
	defer func() { err = resumeJobs(ctx, m.conn, out, err) }()
	applied := 0
	for {
		current, err := m.p.GetDBVersion(ctx)
		if err != nil {
			return rebuilt, fmt.Errorf("migrate up: %w", err)
		}
		next := nextSource(m.p, current)
		if next == nil {
			break
		}
		res, err := migrateStep(ctx, m, out, next, m.p.UpByOne)
		if errors.Is(err, goose.ErrNoNextVersion) {
			break // another migrate applied it meanwhile
		}
		if res != nil {
			printResults(out, "applied", []*goose.MigrationResult{res})
			rebuilt = rebuilt || rebuiltAggregates([]*goose.MigrationResult{res})
		}
		if err != nil {
			return rebuilt, fmt.Errorf("migrate up: %w", err)
		}
		applied++
	}
	if applied == 0 {
		v, err := m.p.GetDBVersion(ctx)
		if err != nil {
			return false, fmt.Errorf("migrate up: %w", err)
		}
		fmt.Fprintf(out, "database is up to date at version %d\n", v)
	}
	return rebuilt, nil
}

func migrateDown(ctx context.Context, m migrator, out io.Writer) (rebuilt bool, err error) {
	defer func() { err = resumeJobs(ctx, m.conn, out, err) }()
	current, err := m.p.GetDBVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate down: %w", err)
	}
	var source *goose.Source
	for _, s := range m.p.ListSources() {
		if s.Version == current {
			source = s
		}
	}
	if source == nil {
		fmt.Fprintln(out, "nothing to roll back: no migration is applied")
		return false, nil
	}
	result, err := migrateStep(ctx, m, out, source, m.p.Down)
	if errors.Is(err, goose.ErrNoNextVersion) {
		fmt.Fprintln(out, "nothing to roll back: no migration is applied")
		return false, nil
	}
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

// nextSource is the first migration above version, or nil.
func nextSource(p *goose.Provider, version int64) *goose.Source {
	for _, s := range p.ListSources() {
		if s.Version > version {
			return s
		}
	}
	return nil
}

// migrateAttempts bounds the retries of a step that lost a race with a concurrent
// change: pausing is the fix, the retry covers a job whose worker the scheduler had
// already started when the pause committed.
const migrateAttempts = 3

// migrateStep pauses the jobs, waits until none runs and applies one step (up or
// down by one); a step that failed on a concurrent change, which goose rolled back
// whole, is tried again. The result is the step's, failed or not.
func migrateStep(ctx context.Context, m migrator, out io.Writer, source *goose.Source,
	step func(context.Context) (*goose.MigrationResult, error)) (*goose.MigrationResult, error) {
	for attempt := 1; ; attempt++ {
		paused, err := storage.PauseJobs(ctx, m.conn, storage.JobDrainTimeout)
		paused.Unscheduled = slices.DeleteFunc(paused.Unscheduled, func(id int32) bool { return m.paused[id] })
		for _, id := range paused.Paused {
			m.paused[id] = true
		}
		storage.ReportPause(lineWriter(out), paused, filepath.Base(source.Path))
		if err != nil {
			return nil, err
		}
		res, err := stepWithHook(ctx, m.conn, source, step)
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			res = partial.Failed
		}
		if err == nil || !concurrentChange(err) || attempt == migrateAttempts {
			return res, err
		}
		fmt.Fprintf(out, "%s lost a race with a concurrent change and was rolled back (%v): trying again (%d of %d)\n",
			filepath.Base(source.Path), err, attempt+1, migrateAttempts)
	}
}

// migrateHookKey carries a test's hook through the command's context: a hook runs
// with the jobs paused, just before each step, on the command's own connection (the
// TimescaleDB test server takes one at a time), and an error it returns fails the
// step as the migration would have. Tests set it in export_test.go.
type migrateHookKey struct{}

type migrateHook func(ctx context.Context, conn db.DBTX, version int64) error

func stepWithHook(ctx context.Context, conn db.DBTX, source *goose.Source,
	step func(context.Context) (*goose.MigrationResult, error)) (*goose.MigrationResult, error) {
	if hook, ok := ctx.Value(migrateHookKey{}).(migrateHook); ok {
		if err := hook(ctx, conn, source.Version); err != nil {
			return &goose.MigrationResult{Source: source, Error: err}, err
		}
	}
	return step(ctx)
}

// concurrentChange reports whether err is one of the errors PostgreSQL and
// TimescaleDB raise when another session changed the same rows or objects: worth a
// retry once that session is done.
func concurrentChange(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code {
	case "40001", "40P01", "55P03": // serialization failure, deadlock, lock not available
		return true
	case "XX000": // internal error: only "tuple concurrently updated" / "... deleted"
		return strings.Contains(pg.Message, "concurrently")
	}
	return false
}

// resumeJobs schedules every sungrow job again, says which, and joins its error to err.
func resumeJobs(ctx context.Context, conn db.DBTX, out io.Writer, err error) error {
	resumed, rerr := storage.ResumeJobs(ctx, conn)
	storage.ReportResume(lineWriter(out), resumed)
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("%w (run `sungrow migrate up` to schedule them again)", rerr))
	}
	return err
}

// lineWriter reports lines on out.
func lineWriter(out io.Writer) func(string) {
	return func(line string) { fmt.Fprintln(out, line) }
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

func migrateStatus(ctx context.Context, m migrator, out io.Writer) (bool, error) {
	statuses, err := m.p.Status(ctx)
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

func migrateVersion(ctx context.Context, m migrator, out io.Writer) (bool, error) {
	v, err := m.p.GetDBVersion(ctx)
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
