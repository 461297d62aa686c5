package cmd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
)

// The TimescaleDB test server has no scheduler, so no job can race a migration there:
// these tests make a step fail as the race makes it fail, leave jobs paused as an
// interrupted run would, and run the jobs themselves between the steps.

// definedJobs is every sungrow job as the migrations define it, scheduled. (Migration
// 5 leaves the compression policy's schedule to TimescaleDB: 12 hours on 2.23.)
var definedJobs = []string{
	"policy_compression every 12:00:00 scheduled",
	"policy_refresh_continuous_aggregate every 01:00:00 scheduled",
	"policy_refresh_continuous_aggregate every 1 day scheduled",
	"policy_refresh_continuous_aggregate every 1 day scheduled",
}

// jobsOf lists the sungrow jobs of the database at url as "proc every schedule
// scheduled|paused", sorted.
func jobsOf(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer pool.Close()
	return jobsOn(t, pool)
}

func jobsOn(t *testing.T, conn db.DBTX) []string {
	t.Helper()
	ctx := context.Background()
	q := db.New(conn)
	if timescale, err := q.TimescaleInstalled(ctx); err != nil || !timescale {
		if err != nil {
			t.Fatalf("check for timescaledb: %v", err)
		}
		return nil
	}
	scheduled := map[int32]bool{}
	states, err := q.SungrowJobs(ctx)
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	for _, s := range states {
		scheduled[s.JobID] = s.Scheduled
	}
	defs, err := q.StorageJobs(ctx)
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	var out []string
	for _, j := range defs {
		state := "paused"
		if scheduled[j.JobID] {
			state = "scheduled"
		}
		out = append(out, fmt.Sprintf("%s every %s %s", j.ProcName, j.Schedule, state))
	}
	if len(out) != len(states) {
		t.Fatalf("the job listings disagree: %v and %v", out, states)
	}
	slices.Sort(out)
	return out
}

// wantJobs is what jobsOf must return after a whole `migrate up` on backend b.
func wantJobs(b testenv.Backend) []string {
	if b == testenv.TimescaleDB {
		return definedJobs
	}
	return nil
}

var concurrentlyUpdated = &pgconn.PgError{Severity: "ERROR", Code: "XX000", Message: "tuple concurrently updated"}

func TestMigrateUpRetriesAStepThatLostARaceWithAJob(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			d := testenv.NewEmpty(t, b)
			d.Pool.Close() // the command opens its own connection
			env := map[string]string{"DATABASE_URL": d.URL}

			var pausedAt4 []string
			failed := false
			ctx := cmd.WithMigrateHook(context.Background(), func(ctx context.Context, conn db.DBTX, version int64) error {
				if version != 4 || failed {
					return nil
				}
				// The policies migration 2 created must be paused before 4 rebuilds their views.
				pausedAt4 = jobsOn(t, conn)
				failed = true
				return fmt.Errorf("simulated: %w", concurrentlyUpdated)
			})
			out, _, err := run(ctx, env, "migrate", "up")
			is.NoErr(err)
			is.True(failed)
			is.True(strings.Contains(out, "00004_energy.sql lost a race with a concurrent change and was rolled back"))
			is.True(strings.Contains(out, "applied 00004_energy.sql"))
			is.True(strings.Contains(out, "applied 00007_tariffs.sql"))
			is.Equal(jobsOf(t, d.URL), wantJobs(b)) // every job scheduled as defined
			if b == testenv.TimescaleDB {
				is.Equal(pausedAt4, []string{
					"policy_refresh_continuous_aggregate every 01:00:00 paused",
					"policy_refresh_continuous_aggregate every 1 day paused",
					"policy_refresh_continuous_aggregate every 1 day paused",
				})
				is.True(strings.Contains(out, "paused TimescaleDB job(s) "))
				is.True(!strings.Contains(out, "found unscheduled")) // they were paused by this run
				is.True(strings.Contains(out, "resumed TimescaleDB job(s) "))
			} else {
				is.True(!strings.Contains(out, "TimescaleDB job")) // nothing to pause
			}
		})
	}
}

func TestMigrateUpGivesUpOnOtherErrorsAndRacesThatGoOn(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			d := testenv.NewEmpty(t, b)
			d.Pool.Close()
			env := map[string]string{"DATABASE_URL": d.URL}

			tries := 0
			// A race that never ends: bounded retries, then the error.
			ctx := cmd.WithMigrateHook(context.Background(), func(ctx context.Context, conn db.DBTX, version int64) error {
				if version != 7 {
					return nil
				}
				tries++
				return fmt.Errorf("simulated: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
			})
			out, _, err := run(ctx, env, "migrate", "up")
			is.True(err != nil)
			is.Equal(tries, 3)
			is.True(strings.Contains(out, "FAILED 00007_tariffs.sql"))
			is.Equal(jobsOf(t, d.URL), wantJobs(b)) // scheduled again although the step failed

			// Any other error fails at once, an XX000 not about a concurrent change too.
			for _, other := range []error{
				&pgconn.PgError{Code: "XX000", Message: "could not find trigger 12345"},
				&pgconn.PgError{Code: "42P07", Message: `relation "sungrow_tariffs" already exists`},
				errors.New("not a database error"),
			} {
				tries = 0
				ctx := cmd.WithMigrateHook(context.Background(), func(ctx context.Context, conn db.DBTX, version int64) error {
					tries++
					return other
				})
				_, _, err := run(ctx, env, "migrate", "up")
				is.True(errors.Is(err, other))
				is.Equal(tries, 1)
			}
			_, _, err = run(context.Background(), env, "migrate", "up")
			is.NoErr(err)
			is.Equal(jobsOf(t, d.URL), wantJobs(b))
		})
	}
}

func TestMigrateUpSchedulesJobsAnInterruptedRunLeftPaused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.TimescaleDB)
	// As a `migrate up` killed between pausing and resuming leaves them.
	q := db.New(d.Pool)
	jobs, err := q.SungrowJobs(ctx)
	is.NoErr(err)
	is.Equal(len(jobs), len(definedJobs))
	for _, j := range jobs {
		is.NoErr(q.ScheduleJob(ctx, db.ScheduleJobParams{JobID: j.JobID, Scheduled: false}))
	}
	is.True(!slices.Equal(jobsOn(t, d.Pool), definedJobs))
	d.Pool.Close()

	out, _, err := run(ctx, map[string]string{"DATABASE_URL": d.URL}, "migrate", "up")
	is.NoErr(err)
	is.True(strings.Contains(out, "up to date"))
	is.True(strings.Contains(out, "resumed TimescaleDB job(s) "))
	is.Equal(jobsOf(t, d.URL), definedJobs)
}

func TestMigrateDownAndUpWhileThePoliciesRun(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.New(t, b)
			// Samples over the policies' windows, which end at the server's now.
			var from time.Time
			is.NoErr(d.Pool.QueryRow(ctx, "SELECT date_trunc('hour', now()) - interval '3 days'").Scan(&from))
			_, err := d.Pool.Exec(ctx, fillDay, from)
			is.NoErr(err)
			var samples int64
			is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&samples))
			d.Pool.Close()
			env := map[string]string{"DATABASE_URL": d.URL}

			runs := 0
			// On the single-connection test server the jobs cannot run beside a step:
			// they run just before each, as the scheduler may have started them there.
			ctx = cmd.WithMigrateHook(ctx, func(ctx context.Context, conn db.DBTX, version int64) error {
				q := db.New(conn)
				if timescale, err := q.TimescaleInstalled(ctx); err != nil || !timescale {
					return err
				}
				jobs, err := q.SungrowJobs(ctx)
				if err != nil {
					return err
				}
				for _, j := range jobs {
					if err := q.RunJob(ctx, j.JobID); err != nil {
						return fmt.Errorf("run job %d: %w", j.JobID, err)
					}
					runs++
				}
				return nil
			})
			for round := range 4 {
				// Down below migration 4, which rebuilds the aggregates both ways.
				for {
					out, _, err := run(ctx, env, "migrate", "down")
					is.NoErr(err)
					is.True(strings.Contains(out, "rolled back"))
					if strings.Contains(out, "rolled back 00004_energy.sql") {
						break
					}
				}
				out, _, err := run(ctx, env, "migrate", "up")
				is.NoErr(err)
				is.True(strings.Contains(out, "applied 00007_tariffs.sql"))
				is.Equal(jobsOf(t, d.URL), wantJobs(b))
				t.Logf("round %d: %d job runs so far", round+1, runs)
			}
			if b == testenv.TimescaleDB {
				is.True(runs > 0)
			}
			pool, err := pgxpool.New(context.Background(), d.URL)
			is.NoErr(err)
			defer pool.Close()
			var after int64
			is.NoErr(pool.QueryRow(context.Background(), "SELECT count(*) FROM sungrow_samples").Scan(&after))
			is.Equal(after, samples) // no sample lost
		})
	}
}
