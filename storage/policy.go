package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
)

// Margin is how far below the oldest refresh window raw retention stays: one default
// chunk, so the clocks of the policies, of serve's late-data refresher and of the
// retention job, and the days between their runs, never bring a refresh to a chunk
// that is already gone.
const Margin = "7 days"

// Policy is a change to the storage jobs; an empty field is left as it is.
type Policy struct {
	CompressAfter string // e.g. 7d: compress chunks older than this
	RawRetention  string // e.g. 400d, or "off"
	ChunkInterval string // e.g. 7d: the range of new chunks
}

// Off turns raw retention off.
const Off = "off"

// ParseInterval reads a storage interval: a whole number of hours (h), days (d), weeks
// (w) or years (y, 365 days), and returns it as PostgreSQL interval text.
func ParseInterval(flag, v string) (string, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	units := map[string]string{"h": "hours", "d": "days", "w": "weeks", "y": "years"}
	if len(v) >= 2 {
		if unit, ok := units[v[len(v)-1:]]; ok {
			n, err := strconv.Atoi(v[:len(v)-1])
			if err == nil && n > 0 && n <= 100000 {
				if unit == "years" { // a year of days, not a calendar year
					return strconv.Itoa(365*n) + " days", nil
				}
				return strconv.Itoa(n) + " " + unit, nil
			}
		}
	}
	return "", fmt.Errorf("%s %q: want a whole number of hours, days, weeks or years, e.g. 12h, 7d, 2w, 1y", flag, v)
}

// ErrNeedsTimescale is returned for policies plain PostgreSQL cannot have.
var ErrNeedsTimescale = errors.New("compression, raw retention and chunks need TimescaleDB; " +
	"on plain PostgreSQL sungrow_samples is one table kept whole")

// Apply changes the storage jobs to p, idempotently, and returns one line per setting
// it was asked about saying what changed (or that nothing did). path is where series
// are read from (series.Open): raw retention is refused unless it is the aggregates,
// since the raw path would lose every dropped sample from the series users see. Every
// setting is checked before anything is changed.
func Apply(ctx context.Context, conn db.DBTX, p Policy, path series.Path) ([]string, error) {
	q := db.New(conn)
	timescale, err := q.TimescaleInstalled(ctx)
	if err != nil {
		return nil, fmt.Errorf("check for timescaledb: %w", err)
	}
	if !timescale {
		return nil, ErrNeedsTimescale
	}
	var compressAfter, retention, chunk string
	if p.CompressAfter != "" {
		if compressAfter, err = ParseInterval("--compress-after", p.CompressAfter); err != nil {
			return nil, err
		}
	}
	if p.ChunkInterval != "" {
		if chunk, err = ParseInterval("--chunk-interval", p.ChunkInterval); err != nil {
			return nil, err
		}
	}
	if p.RawRetention != "" && !strings.EqualFold(p.RawRetention, Off) {
		if retention, err = ParseInterval("--raw-retention", p.RawRetention); err != nil {
			return nil, err
		}
		if err := checkRetention(ctx, q, p.RawRetention, retention, path); err != nil {
			return nil, err
		}
	}

	var changes []string
	if compressAfter != "" {
		c, err := applyCompression(ctx, q, compressAfter)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c)
	}
	if p.RawRetention != "" {
		c, err := applyRetention(ctx, q, retention)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c)
	}
	if chunk != "" {
		c, err := applyChunkInterval(ctx, q, chunk)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// checkRetention refuses a raw retention that could delete history users still see:
// while series are read from the raw samples, or when the dropped chunks could lie in
// a refresh policy's window (the policy would recompute those buckets from nothing).
func checkRetention(ctx context.Context, q *db.Queries, flag, retention string, path series.Path) error {
	if path != series.PathAggregates {
		return fmt.Errorf("--raw-retention %s refused: series are read from %s, not from the "+
			"continuous aggregates, so dropping raw chunks would delete history the series still show "+
			"(rebuild the aggregates in SUNGROW_TZ first: `sungrow migrate down`, `migrate up`, `refresh`)", flag, path)
	}
	windows, err := q.RefreshWindows(ctx, db.RefreshWindowsParams{DropAfter: retention, Margin: Margin})
	if err != nil {
		return fmt.Errorf("read the aggregates' refresh windows: %w", err)
	}
	for _, w := range windows {
		if !w.Outside {
			return fmt.Errorf("--raw-retention %s refused: it reaches into the refresh window of %s "+
				"(the last %s) plus a margin of %s, and a refresh there would recompute buckets from raw "+
				"chunks already dropped; keep raw samples longer than %s + %s", flag, w.ViewName,
				w.StartOffset, Margin, w.StartOffset, Margin)
		}
	}
	return nil
}

func applyCompression(ctx context.Context, q *db.Queries, after string) (string, error) {
	policies, err := q.CompressionPolicies(ctx)
	if err != nil {
		return "", fmt.Errorf("read the compression policy: %w", err)
	}
	was := "none"
	if len(policies) == 1 {
		same, err := q.SameInterval(ctx, db.SameIntervalParams{First: policies[0].CompressAfter, Second: after})
		if err != nil {
			return "", fmt.Errorf("compare compression intervals: %w", err)
		}
		if same {
			return fmt.Sprintf("compression: unchanged, chunks older than %s (job %d)", policies[0].CompressAfter, policies[0].JobID), nil
		}
		was = policies[0].CompressAfter
	}
	if len(policies) > 0 {
		if err := q.RemoveCompressionPolicy(ctx); err != nil {
			return "", fmt.Errorf("remove the compression policy: %w", err)
		}
	}
	job, err := q.AddCompressionPolicy(ctx, after)
	if err != nil {
		return "", fmt.Errorf("add a compression policy after %s: %w", after, err)
	}
	return fmt.Sprintf("compression: chunks older than %s (was %s), job %d", after, was, job), nil
}

func applyRetention(ctx context.Context, q *db.Queries, retention string) (string, error) {
	jobs, err := q.RetentionJobs(ctx)
	if err != nil {
		return "", fmt.Errorf("read the raw retention job: %w", err)
	}
	was := Off
	if len(jobs) == 1 {
		if retention == "" {
			was = jobs[0].DropAfter
		} else {
			same, err := q.SameInterval(ctx, db.SameIntervalParams{First: jobs[0].DropAfter, Second: retention})
			if err != nil {
				return "", fmt.Errorf("compare retention intervals: %w", err)
			}
			if same {
				return fmt.Sprintf("raw retention: unchanged, %s (job %d)", jobs[0].DropAfter, jobs[0].JobID), nil
			}
			was = jobs[0].DropAfter
		}
	}
	for _, j := range jobs {
		if err := q.DeleteJob(ctx, j.JobID); err != nil {
			return "", fmt.Errorf("delete the raw retention job %d: %w", j.JobID, err)
		}
	}
	if retention == "" {
		if len(jobs) == 0 {
			return "raw retention: unchanged, off", nil
		}
		return fmt.Sprintf("raw retention: off (was %s); chunks already dropped stay dropped", was), nil
	}
	job, err := q.AddRetentionJob(ctx, db.AddRetentionJobParams{DropAfter: retention, Margin: Margin})
	if err != nil {
		return "", fmt.Errorf("add the raw retention job: %w", err)
	}
	return fmt.Sprintf("raw retention: raw chunks older than %s dropped daily once every aggregate has "+
		"materialized them and they lie %s below every refresh window (was %s), job %d; the aggregates keep everything",
		retention, Margin, was, job), nil
}

func applyChunkInterval(ctx context.Context, q *db.Queries, chunk string) (string, error) {
	current, err := q.ChunkInterval(ctx)
	if err != nil {
		return "", fmt.Errorf("read the chunk interval: %w", err)
	}
	same, err := q.SameInterval(ctx, db.SameIntervalParams{First: current, Second: chunk})
	if err != nil {
		return "", fmt.Errorf("compare chunk intervals: %w", err)
	}
	if same {
		return fmt.Sprintf("chunk interval: unchanged, %s", current), nil
	}
	if err := q.SetChunkInterval(ctx, chunk); err != nil {
		return "", fmt.Errorf("set the chunk interval to %s: %w", chunk, err)
	}
	return fmt.Sprintf("chunk interval: %s for new chunks (was %s)", chunk, current), nil
}
