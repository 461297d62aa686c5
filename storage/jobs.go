package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sungrow/sungrow/db"
)

// Changing an aggregate, a policy or a job while TimescaleDB's scheduler runs one of
// sungrow's jobs can fail ("tuple concurrently updated"): the commands that do so
// pause the jobs first and schedule them again afterwards. Pausing lives here, beside
// the storage policies and the job listing, because it is what sungrow knows about
// its jobs; the commands only decide when.
//
// Nothing records what was paused: every sungrow job is meant to be scheduled (the
// migrations and `storage policy` create them so), so resuming schedules every one
// that is not, and a run interrupted between pause and resume is mended by the next.

// JobDrainTimeout bounds the wait for a running job to finish after pausing.
const JobDrainTimeout = 5 * time.Minute

// jobPoll is how often the wait looks again: a job's worker is another backend, whose
// end no query can await.
const jobPoll = 100 * time.Millisecond

// PausedJobs is what PauseJobs did.
type PausedJobs struct {
	Paused []int32 // scheduled before, unscheduled now
	// Unscheduled were found unscheduled already: left by an interrupted run, or by
	// another command pausing them right now. ResumeJobs schedules them too.
	Unscheduled []int32
	Waited      []int32 // were running and have finished
}

// PauseJobs unschedules every sungrow job and waits, up to timeout, until none of them
// runs. On plain PostgreSQL (no jobs) it does nothing. On error some jobs may be
// paused: call ResumeJobs whatever it returns.
func PauseJobs(ctx context.Context, conn db.DBTX, timeout time.Duration) (PausedJobs, error) {
	var out PausedJobs
	q := db.New(conn)
	jobs, err := listJobs(ctx, q)
	if err != nil || len(jobs) == 0 {
		return out, err
	}
	for _, j := range jobs {
		if !j.Scheduled {
			out.Unscheduled = append(out.Unscheduled, j.JobID)
			continue
		}
		if err := q.ScheduleJob(ctx, db.ScheduleJobParams{JobID: j.JobID, Scheduled: false}); err != nil {
			return out, fmt.Errorf("pause TimescaleDB job %d: %w", j.JobID, err)
		}
		out.Paused = append(out.Paused, j.JobID)
	}
	out.Waited, err = awaitIdle(ctx, q, timeout)
	return out, err
}

// awaitIdle waits until no sungrow job runs, and returns the jobs it saw running.
func awaitIdle(ctx context.Context, q *db.Queries, timeout time.Duration) ([]int32, error) {
	deadline := time.Now().Add(timeout)
	seen := map[int32]bool{}
	var waited []int32
	for {
		jobs, err := q.SungrowJobs(ctx)
		if err != nil {
			return waited, fmt.Errorf("list the running TimescaleDB jobs: %w", err)
		}
		var running []int32
		for _, j := range jobs {
			if j.Running {
				running = append(running, j.JobID)
				if !seen[j.JobID] {
					seen[j.JobID] = true
					waited = append(waited, j.JobID)
				}
			}
		}
		if len(running) == 0 {
			return waited, nil
		}
		if time.Now().After(deadline) {
			return waited, fmt.Errorf("TimescaleDB job(s) %s still run after %s: let them finish "+
				"(timescaledb_information.job_stats) and try again", ids(running), timeout)
		}
		select {
		case <-ctx.Done():
			return waited, fmt.Errorf("wait for TimescaleDB job(s) %s: %w", ids(running), ctx.Err())
		case <-time.After(jobPoll):
		}
	}
}

// ResumeJobs schedules every sungrow job that is not scheduled and returns them. It
// runs even when ctx is cancelled (an interrupted command must not leave the jobs
// paused; a second interrupt kills the process, and the next run mends that).
func ResumeJobs(ctx context.Context, conn db.DBTX) ([]int32, error) {
	ctx = context.WithoutCancel(ctx)
	q := db.New(conn)
	jobs, err := listJobs(ctx, q)
	if err != nil {
		return nil, err
	}
	var resumed []int32
	for _, j := range jobs {
		if j.Scheduled {
			continue
		}
		if err := q.ScheduleJob(ctx, db.ScheduleJobParams{JobID: j.JobID, Scheduled: true}); err != nil {
			return resumed, fmt.Errorf("schedule TimescaleDB job %d again: %w", j.JobID, err)
		}
		resumed = append(resumed, j.JobID)
	}
	return resumed, nil
}

// WithJobsPaused runs fn with every sungrow job paused and idle, and schedules them
// again afterwards, also when fn fails. report gets one line for what was paused and
// one for what was resumed (none when there were no jobs).
func WithJobsPaused(ctx context.Context, conn db.DBTX, report func(string), fn func() error) error {
	paused, err := PauseJobs(ctx, conn, JobDrainTimeout)
	if err == nil {
		ReportPause(report, paused, "")
		err = fn()
	}
	resumed, rerr := ResumeJobs(ctx, conn)
	ReportResume(report, resumed)
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("%w (run `sungrow migrate up` to schedule them again)", rerr))
	}
	return err
}

// ReportPause tells report what PauseJobs did, if anything; before names the step.
func ReportPause(report func(string), p PausedJobs, before string) {
	if before != "" {
		before = " before " + before
	}
	if len(p.Unscheduled) > 0 {
		report(fmt.Sprintf("TimescaleDB job(s) %s found unscheduled (an interrupted run?): they are scheduled again at the end", ids(p.Unscheduled)))
	}
	if len(p.Paused) > 0 {
		report(fmt.Sprintf("paused TimescaleDB job(s) %s%s", ids(p.Paused), before))
	}
	if len(p.Waited) > 0 {
		report(fmt.Sprintf("waited for running TimescaleDB job(s) %s to finish", ids(p.Waited)))
	}
}

// ReportResume tells report which jobs ResumeJobs scheduled again, if any.
func ReportResume(report func(string), resumed []int32) {
	if len(resumed) > 0 {
		report(fmt.Sprintf("resumed TimescaleDB job(s) %s", ids(resumed)))
	}
}

func ids(jobs []int32) string {
	s := make([]string, len(jobs))
	for i, j := range jobs {
		s[i] = strconv.Itoa(int(j))
	}
	return strings.Join(s, ", ")
}

// listJobs lists sungrow's jobs; none on plain PostgreSQL.
func listJobs(ctx context.Context, q *db.Queries) ([]db.SungrowJobsRow, error) {
	timescale, err := q.TimescaleInstalled(ctx)
	if err != nil {
		return nil, fmt.Errorf("check for timescaledb: %w", err)
	}
	if !timescale {
		return nil, nil
	}
	jobs, err := q.SungrowJobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the TimescaleDB jobs: %w", err)
	}
	return jobs, nil
}
