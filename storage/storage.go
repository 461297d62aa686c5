// Package storage is what sungrow knows about its disk: the sizes, compression and
// TimescaleDB jobs that `sungrow storage` prints and /metrics exports, and the one place
// that decides which storage policy changes are safe (raw retention must never drop a
// sample the aggregates have not kept). It is a package because the command and serve
// both read it, and the rules of the policy belong beside what they read.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/series"
)

// SamplesTable is the raw hypertable (or, on plain PostgreSQL, table).
const SamplesTable = "sungrow_samples"

// Relation is one table or aggregate on disk.
// The JSON of these types is `sungrow storage --json`; a zero time is left out.
type Relation struct {
	Name      string `json:"name"`
	Aggregate bool   `json:"aggregate"`
	Bytes     int64  `json:"bytes"`
	Rows      int64  `json:"rows_estimate"` // the planner's estimate
	// Chunks and CompressedChunks count the relation's chunks (TimescaleDB only).
	Chunks           int64 `json:"chunks"`
	CompressedChunks int64 `json:"compressed_chunks"`
	// BeforeCompression and AfterCompression are the bytes of the compressed chunks
	// before and after compression (the raw table only).
	BeforeCompression int64 `json:"before_compression_bytes"`
	AfterCompression  int64 `json:"after_compression_bytes"`
	// MaterializedUpTo is an aggregate's watermark; zero before its first refresh.
	MaterializedUpTo time.Time `json:"materialized_up_to,omitzero"`
}

// Job is one TimescaleDB background job acting on sungrow's tables.
type Job struct {
	ID int32 `json:"id"`
	// Name is TimescaleDB's application name, but "Raw Retention [id]" for sungrow's
	// own retention job, which TimescaleDB calls a "User-Defined Action".
	Name       string    `json:"name"`
	Proc       string    `json:"proc"`
	Schedule   string    `json:"schedule"`
	Config     string    `json:"config"`
	LastRun    time.Time `json:"last_run,omitzero"`   // zero: never
	NextStart  time.Time `json:"next_start,omitzero"` // zero: not scheduled
	LastStatus string    `json:"last_status"`
	Runs       int64     `json:"runs"`
	Failures   int64     `json:"failures"`
}

// Status is the whole storage picture of one database.
type Status struct {
	Timescale     bool       `json:"timescaledb"`
	Relations     []Relation `json:"relations"` // the raw table first
	Jobs          []Job      `json:"jobs"`
	ChunkInterval string     `json:"chunk_interval,omitempty"`
	// RawRetention is the age past which the retention job drops raw chunks, as
	// PostgreSQL interval text ("400 days"); empty: raw retention is off.
	RawRetention string `json:"raw_retention,omitempty"`
	// RawHorizon is where raw retention has dropped up to; zero: nothing dropped.
	RawHorizon time.Time `json:"raw_horizon,omitzero"`
}

// rawRetentionProc is the procedure of sungrow's raw retention job (sql/00005).
const rawRetentionProc = "sungrow_raw_retention"

// Samples returns the raw table's relation.
func (s Status) Samples() Relation {
	for _, r := range s.Relations {
		if r.Name == SamplesTable {
			return r
		}
	}
	return Relation{Name: SamplesTable}
}

// Sizes reads the bytes and rows of the raw table and of each aggregate.
func Sizes(ctx context.Context, conn db.DBTX) ([]Relation, bool, error) {
	q := db.New(conn)
	timescale, err := q.TimescaleInstalled(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("check for timescaledb: %w", err)
	}
	if !timescale {
		p, err := q.PlainSamplesStorage(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("read the size of %s: %w", SamplesTable, err)
		}
		return []Relation{{Name: SamplesTable, Bytes: p.Bytes, Rows: p.RowsEstimate}}, false, nil
	}
	s, err := q.SamplesStorage(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("read the size of %s: %w", SamplesTable, err)
	}
	out := []Relation{{Name: SamplesTable, Bytes: s.Bytes, Rows: s.RowsEstimate, Chunks: s.Chunks,
		CompressedChunks: s.CompressedChunks, BeforeCompression: s.BeforeCompressionBytes,
		AfterCompression: s.AfterCompressionBytes}}
	aggs, err := q.AggregatesStorage(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("read the sizes of the aggregates: %w", err)
	}
	for _, a := range aggs {
		r := Relation{Name: a.ViewName, Aggregate: true, Bytes: a.Bytes, Rows: a.RowsEstimate, Chunks: a.Chunks}
		if a.Refreshed {
			r.MaterializedUpTo = a.MaterializedUpTo
		}
		out = append(out, r)
	}
	return out, true, nil
}

// Read returns the storage status: sizes, and on TimescaleDB the chunk interval, the
// raw horizon and the jobs.
func Read(ctx context.Context, conn db.DBTX) (Status, error) {
	rels, timescale, err := Sizes(ctx, conn)
	if err != nil {
		return Status{}, err
	}
	st := Status{Timescale: timescale, Relations: rels, Jobs: []Job{}}
	if !timescale {
		return st, nil
	}
	q := db.New(conn)
	if st.ChunkInterval, err = q.ChunkInterval(ctx); err != nil {
		return Status{}, fmt.Errorf("read the chunk interval of %s: %w", SamplesTable, err)
	}
	if st.RawHorizon, err = series.RawHorizon(ctx, conn); err != nil {
		return Status{}, err
	}
	retention, err := q.RetentionJobs(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read the raw retention job: %w", err)
	}
	if len(retention) > 0 {
		st.RawRetention = retention[0].DropAfter
	}
	jobs, err := q.StorageJobs(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read the TimescaleDB jobs: %w", err)
	}
	for _, j := range jobs {
		name := j.ApplicationName
		if j.ProcName == rawRetentionProc {
			name = fmt.Sprintf("Raw Retention [%d]", j.JobID)
		}
		st.Jobs = append(st.Jobs, Job{ID: j.JobID, Name: name, Proc: j.ProcName,
			Schedule: j.Schedule, Config: j.Config, LastRun: timeOf(j.LastRunStartedAt),
			NextStart: timeOf(j.NextStart), LastStatus: j.LastRunStatus, Runs: j.TotalRuns,
			Failures: j.TotalFailures})
	}
	return st, nil
}

// timeOf reads the query's epoch (no time) as zero.
func timeOf(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t
}

// Watch calls report with the sizes now and then every interval until ctx ends, so
// /metrics shows them without a query on its request path. A failed read is logged
// and the previous sizes stay.
func Watch(ctx context.Context, conn db.DBTX, every time.Duration, logger *slog.Logger, report func([]Relation)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rels, _, err := Sizes(ctx, conn)
		switch {
		case err == nil:
			report(rels)
		case ctx.Err() == nil && !errors.Is(err, context.Canceled):
			logger.Warn("storage sizes for /metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
