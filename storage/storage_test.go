package storage_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	sungrowsql "github.com/sungrow/sungrow/sql"
	"github.com/sungrow/sungrow/storage"
	"github.com/sungrow/sungrow/telemetry"
)

const dev = "inverter-store"

// samplesEvery returns samples every step in [from, to), with values that are not
// exact in binary, as real readings are.
func samplesEvery(from, to time.Time, step time.Duration) []telemetry.Sample {
	var out []telemetry.Sample
	for ts, i := from, 0; ts.Before(to); ts, i = ts.Add(step), i+1 {
		out = append(out, telemetry.Sample{DeviceID: dev, TS: ts,
			PVPowerW: 0.1 * float64(i%977), BatteryPowerW: 0.3*float64(i%311) - 40.7,
			BatterySoCPct: 0.7 * float64(i%139), LoadPowerW: 1.1 * float64(i%521),
			ExportPowerW: 0.1*float64(i%613) - 25.3, SampleCount: int32(1 + i%3)})
	}
	return out
}

func insert(t *testing.T, store *telemetry.Store, samples []telemetry.Sample) int64 {
	t.Helper()
	var n int64
	for len(samples) > 0 {
		batch := samples[:min(1000, len(samples))]
		samples = samples[len(batch):]
		got, err := store.Insert(context.Background(), dev, batch)
		if err != nil {
			t.Fatal(err)
		}
		n += got
	}
	return n
}

// refreshAll materializes every aggregate up to its bucket holding upTo, as
// `sungrow refresh --to` does (never below the raw horizon).
func refreshAll(t *testing.T, pool *pgxpool.Pool, upTo, now time.Time) {
	t.Helper()
	for _, agg := range series.Aggregates {
		from, to := series.Window(agg, time.Time{}, upTo, now, time.UTC)
		horizon, err := series.RawHorizon(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		from = series.AboveRawHorizon(agg, from, horizon)
		if err := series.Refresh(context.Background(), pool, agg, from, to); err != nil {
			t.Fatal(err)
		}
	}
}

// frameCase is one frame of /v1/series on one date.
type frameCase struct {
	frame string
	date  time.Time
}

// framesJSON is every case's series as its JSON, as the handler encodes it.
func framesJSON(t *testing.T, svc *series.Service, cases []frameCase) map[frameCase]string {
	t.Helper()
	out := map[frameCase]string{}
	for _, c := range cases {
		r, err := svc.Series(context.Background(), dev, c.frame, c.date)
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(r) // buckets and totals, energy included
		if err != nil {
			t.Fatal(err)
		}
		out[c] = string(j)
	}
	return out
}

func samplesIn(t *testing.T, svc *series.Service, c frameCase) int64 {
	t.Helper()
	r, err := svc.Series(context.Background(), dev, c.frame, c.date)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, x := range r.Buckets {
		n += x.SampleCount
	}
	return n
}

func sameFrames(t *testing.T, before, after map[frameCase]string) {
	t.Helper()
	for c, want := range before {
		if after[c] != want {
			t.Errorf("frame=%s date=%s changed:\nbefore %s\nafter  %s", c.frame, c.date.Format(time.DateOnly), want, after[c])
		}
	}
}

func jobID(t *testing.T, pool *pgxpool.Pool, proc string) int32 {
	t.Helper()
	st, err := storage.Read(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range st.Jobs {
		if j.Proc == proc {
			return j.ID
		}
	}
	t.Fatalf("no %s job among %+v", proc, st.Jobs)
	return 0
}

// TestCompressedChunksKeepIngestAndSeries: the compression policy compresses old
// chunks without changing one byte of any frame, a re-sent batch inserts nothing, and
// a new late sample goes into its compressed chunk and reaches every frame through the
// late-data refresher.
func TestCompressedChunksKeepIngestAndSeries(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.TimescaleDB)
	store := telemetry.NewStore(d.Pool)
	day := func(n int) time.Time { return time.Date(2026, 3, 2+n, 0, 0, 0, 0, time.UTC) } // 0: a Monday
	now := day(28).Add(12 * time.Hour)
	samples := samplesEvery(day(0), day(21), 10*time.Minute)
	is.Equal(insert(t, store, samples), int64(len(samples)))
	refreshAll(t, d.Pool, time.Time{}, now)

	svc, info, err := series.Open(ctx, d.Pool, time.UTC)
	is.NoErr(err)
	is.Equal(info.Path, series.PathAggregates)
	var cases []frameCase
	for i := range 21 {
		cases = append(cases, frameCase{"day", day(i)})
	}
	cases = append(cases, frameCase{"week", day(0)}, frameCase{"week", day(7)}, frameCase{"week", day(14)},
		frameCase{"month", day(0)}, frameCase{"year", day(0)}, frameCase{"all", day(0)})
	before := framesJSON(t, svc, cases)

	// The policy, run as the scheduler would: the samples are from March 2026, older
	// than 7 days by the server's clock, so every chunk qualifies.
	is.NoErr(db.New(d.Pool).RunJob(ctx, jobID(t, d.Pool, "policy_compression")))
	st, err := storage.Read(ctx, d.Pool)
	is.NoErr(err)
	raw := st.Samples()
	is.True(raw.Chunks >= 3)
	is.Equal(raw.CompressedChunks, raw.Chunks)            // all compressed
	is.True(raw.AfterCompression < raw.BeforeCompression) // and smaller for it
	sameFrames(t, before, framesJSON(t, svc, cases))

	lateCases := []frameCase{{"day", day(8)}, {"week", day(7)}, {"month", day(0)}, {"year", day(0)}, {"all", day(0)}}
	want := map[frameCase]int64{}
	for _, c := range lateCases {
		want[c] = samplesIn(t, svc, c) + 1
	}
	// The edge re-sends its week-old backlog: nothing new.
	is.Equal(insert(t, store, samples[1000:2000]), int64(0))
	// One sample it never sent, into a compressed chunk, below every watermark.
	late := telemetry.Sample{DeviceID: dev, TS: day(8).Add(13*time.Hour + 34*time.Minute + 56*time.Second),
		PVPowerW: 1234.5, BatteryPowerW: -321, BatterySoCPct: 55.5, LoadPowerW: 800, ExportPowerW: 113.5, SampleCount: 1}
	is.Equal(insert(t, store, []telemetry.Sample{late}), int64(1))
	is.Equal(insert(t, store, []telemetry.Sample{late}), int64(0)) // and only once

	var logs testenv.LogBuffer
	r := series.NewRefresher(d.Pool, time.UTC, 10*time.Millisecond, slog.New(slog.NewJSONHandler(&logs, nil)),
		func() time.Time { return now })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	r.Touched(dev, late.TS, late.TS) // as the ingest handler does

	testenv.Await(t, "the late sample in every frame", 60*time.Second, func() bool {
		for _, c := range lateCases {
			if got := samplesIn(t, svc, c); got != want[c] {
				t.Logf("frame=%s: %d samples, want %d; log: %s", c.frame, got, want[c], logs.String())
				return false
			}
		}
		return true
	})
}

// TestRawRetentionDropsOnlyWhatTheAggregatesKeep: the retention job drops exactly the
// raw chunks below every watermark and outside every refresh window, the series stay
// identical, and a setting inside a window, or while series come from the raw path,
// is refused with its reason. The job reads the server's clock, so the samples are
// laid out around the server's now().
func TestRawRetentionDropsOnlyWhatTheAggregatesKeep(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.TimescaleDB)
	store := telemetry.NewStore(d.Pool)
	var now time.Time
	is.NoErr(d.Pool.QueryRow(ctx, "SELECT now()").Scan(&now))
	now = now.UTC()
	first := now.AddDate(0, 0, -420).Truncate(24 * time.Hour)
	samples := samplesEvery(first, now.Add(-2*time.Hour).Truncate(time.Hour), 30*time.Minute)
	is.Equal(insert(t, store, samples), int64(len(samples)))

	// Only the oldest part is materialized yet, as after `migrate up` on existing
	// history without `sungrow refresh`.
	partly := now.AddDate(0, 0, -300)
	refreshAll(t, d.Pool, partly, now)

	svc, _, err := series.Open(ctx, d.Pool, time.UTC)
	is.NoErr(err)
	var cases []frameCase
	for m := series.Monthly.Floor(first, time.UTC); m.Before(now); m = m.AddDate(0, 1, 0) {
		cases = append(cases, frameCase{"month", m}, frameCase{"day", m.AddDate(0, 0, 14)})
	}
	for y := first.Year(); y <= now.Year(); y++ {
		cases = append(cases, frameCase{"year", time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)})
	}
	cases = append(cases, frameCase{"all", first})
	before := framesJSON(t, svc, cases)

	// Refused: inside the monthly window plus the margin, or while series are raw.
	_, err = storage.Apply(ctx, d.Pool, storage.Policy{RawRetention: "60d"}, series.PathAggregates)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "refresh window of sungrow_monthly")) // says why
	_, err = storage.Apply(ctx, d.Pool, storage.Policy{RawRetention: "200d"}, series.PathRaw)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "raw samples")) // names the path
	jobsBefore, err := db.New(d.Pool).RetentionJobs(ctx)
	is.NoErr(err)
	is.Equal(len(jobsBefore), 0) // nothing was changed

	changes, err := storage.Apply(ctx, d.Pool, storage.Policy{RawRetention: "200d"}, series.PathAggregates)
	is.NoErr(err)
	is.True(strings.Contains(strings.Join(changes, "\n"), "older than 200 days"))
	again, err := storage.Apply(ctx, d.Pool, storage.Policy{RawRetention: "200d"}, series.PathAggregates)
	is.NoErr(err)
	is.True(strings.Contains(strings.Join(again, "\n"), "unchanged")) // idempotent
	job := jobID(t, d.Pool, "sungrow_raw_retention")

	type chunk struct{ start, end time.Time }
	chunks := func() []chunk {
		rows, err := d.Pool.Query(ctx, `SELECT range_start, range_end FROM timescaledb_information.chunks
			WHERE hypertable_schema = current_schema() AND hypertable_name = 'sungrow_samples' ORDER BY 1`)
		is.NoErr(err)
		var out []chunk
		for rows.Next() {
			var c chunk
			is.NoErr(rows.Scan(&c.start, &c.end))
			out = append(out, c)
		}
		is.NoErr(rows.Err())
		return out
	}
	// runJob runs the job and checks it dropped exactly the chunks ending by cutoff.
	runJob := func(cutoff time.Time) {
		t.Helper()
		all := chunks()
		var keep []chunk
		for _, c := range all {
			if c.end.After(cutoff) {
				keep = append(keep, c)
			}
		}
		is.True(len(keep) < len(all)) // the case drops something
		is.True(len(keep) > 0)
		is.NoErr(db.New(d.Pool).RunJob(ctx, job))
		got := chunks()
		is.Equal(len(got), len(keep))
		for i := range got {
			is.True(got[i].start.Equal(keep[i].start)) // exactly the allowed chunks are gone
		}
		sameFrames(t, before, framesJSON(t, svc, cases))
	}

	// The watermarks bind: the monthly aggregate is materialized up to the month
	// holding `partly`, so nothing after that month's start may go, 200 days or not.
	monthly := series.Monthly.Floor(partly, time.UTC)
	st, err := storage.Read(ctx, d.Pool)
	is.NoErr(err)
	for _, r := range st.Relations {
		if r.Name == string(series.Monthly) {
			is.True(r.MaterializedUpTo.Equal(monthly)) // the status shows the watermark
		}
	}
	runJob(monthly)
	st, err = storage.Read(ctx, d.Pool)
	is.NoErr(err)
	is.True(!st.RawHorizon.IsZero() && !st.RawHorizon.After(monthly))

	// Materialized to the end: now the age binds (200 days is beyond the 3-month
	// window plus margin). A chunk ends by the cutoff or is kept whole.
	refreshAll(t, d.Pool, time.Time{}, now)
	before = framesJSON(t, svc, cases) // materialized buckets, summed in their own order
	runJob(now.AddDate(0, 0, -200))

	// A sample below the horizon is not stored: an hourly refresh there would rebuild
	// its bucket from that one sample. A full refresh (kept above the horizon for the
	// hourly aggregate) loses nothing either; the days and months it recomputes from
	// the hours may sum in another order, so their averages agree to 1e-12.
	old := samplesEvery(first.AddDate(0, 0, 30), first.AddDate(0, 0, 31), time.Hour)
	is.Equal(insert(t, store, old), int64(0))
	refreshAll(t, d.Pool, time.Time{}, now)
	after := framesJSON(t, svc, cases)
	for c := range before {
		var ra, rb series.Result
		is.NoErr(json.Unmarshal([]byte(before[c]), &ra))
		is.NoErr(json.Unmarshal([]byte(after[c]), &rb))
		a, b := ra.Buckets, rb.Buckets
		is.Equal(len(a), len(b))
		for i := range a {
			is.Equal(a[i].SampleCount, b[i].SampleCount) // nothing lost
			is.True(a[i].Bucket.Equal(b[i].Bucket))
			is.True(math.Abs(a[i].AvgPVPowerW-b[i].AvgPVPowerW) <= 1e-12*math.Abs(a[i].AvgPVPowerW))
			is.True(math.Abs(a[i].AvgLoadPowerW-b[i].AvgLoadPowerW) <= 1e-12*math.Abs(a[i].AvgLoadPowerW))
		}
	}

	// Migration 5 will not be rolled back over dropped chunks.
	sqlDB := stdlib.OpenDBFromPool(d.Pool)
	defer sqlDB.Close()
	migrator, err := sungrowsql.NewMigrator(sqlDB)
	is.NoErr(err)
	_, err = migrator.DownTo(ctx, 4)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "raw retention has dropped the samples before"))

	changes, err = storage.Apply(ctx, d.Pool, storage.Policy{RawRetention: "off"}, series.PathAggregates)
	is.NoErr(err)
	is.True(strings.Contains(strings.Join(changes, "\n"), "off (was 200 days)"))
	jobsAfter, err := db.New(d.Pool).RetentionJobs(ctx)
	is.NoErr(err)
	is.Equal(len(jobsAfter), 0)
}

// TestPlainPostgreSQL: sizes are there, policies are refused with the reason.
func TestPlainPostgreSQL(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	insert(t, telemetry.NewStore(d.Pool), samplesEvery(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), time.Minute))
	st, err := storage.Read(ctx, d.Pool)
	is.NoErr(err)
	is.True(!st.Timescale)
	is.Equal(len(st.Relations), 1)
	is.True(st.Samples().Bytes > 0)
	_, err = storage.Apply(ctx, d.Pool, storage.Policy{CompressAfter: "7d"}, series.PathRaw)
	is.Equal(err, storage.ErrNeedsTimescale)
}

func TestParseInterval(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{"12h": "12 hours", "7d": "7 days", "2w": "2 weeks", "1y": "365 days", " 400D ": "400 days"} {
		got, err := storage.ParseInterval("--x", in)
		is.NoErr(err)
		is.Equal(got, want)
	}
	for _, in := range []string{"", "d", "0d", "-1d", "7", "7m", "1.5d", "7 days", "999999d"} {
		_, err := storage.ParseInterval("--x", in)
		is.True(err != nil) // refused
	}
}

// TestWatchReportsSizes: what /metrics shows comes from this loop, read at once and
// then every interval.
func TestWatchReportsSizes(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		reports := make(chan []storage.Relation, 10)
		done := make(chan struct{})
		go func() {
			defer close(done)
			storage.Watch(ctx, d.Pool, time.Hour, slog.New(slog.DiscardHandler), func(r []storage.Relation) { reports <- r })
		}()
		rels := <-reports
		cancel()
		<-done
		is.Equal(rels[0].Name, storage.SamplesTable)
		is.True(rels[0].Bytes > 0)
		if d.Timescale {
			is.Equal(len(rels), 4) // and each aggregate
		}
	})
}

// TestMigrationDownDecompresses: rolling back migration 5 decompresses every chunk,
// turns compression off and keeps every sample; up again compresses as before.
func TestMigrationDownDecompresses(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.TimescaleDB)
	samples := samplesEvery(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), 10*time.Minute)
	insert(t, telemetry.NewStore(d.Pool), samples)
	is.NoErr(db.New(d.Pool).RunJob(ctx, jobID(t, d.Pool, "policy_compression")))

	sqlDB := stdlib.OpenDBFromPool(d.Pool)
	defer sqlDB.Close()
	p, err := sungrowsql.NewMigrator(sqlDB)
	is.NoErr(err)
	_, err = p.DownTo(ctx, 4) // migration 5 and those after it
	is.NoErr(err)
	var n int64
	var compressed bool
	is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&n))
	is.Equal(n, int64(len(samples))) // every sample kept
	is.NoErr(d.Pool.QueryRow(ctx, `SELECT compression_enabled FROM timescaledb_information.hypertables
		WHERE hypertable_schema = current_schema() AND hypertable_name = 'sungrow_samples'`).Scan(&compressed))
	is.True(!compressed)
	_, err = p.Up(ctx)
	is.NoErr(err)
	is.NoErr(db.New(d.Pool).RunJob(ctx, jobID(t, d.Pool, "policy_compression")))
	st, err := storage.Read(ctx, d.Pool)
	is.NoErr(err)
	is.Equal(st.Samples().CompressedChunks, st.Samples().Chunks)
}
