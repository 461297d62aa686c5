package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// seriesNow pins the clock of the series tests: a Sunday afternoon.
var seriesNow = time.Date(2026, 2, 15, 14, 30, 0, 0, time.UTC)

// seriesFixture is samples every 20 minutes from 2026-01-20 to just before seriesNow,
// plus a few in 2025, with values that are exact in binary (whole and quarter numbers),
// so sums come out the same whatever order a database adds them in, and sample_count
// 1 to 3, so an unweighted average would differ; the inverter counter on most samples.
func seriesFixture() []telemetry.Sample {
	var out []telemetry.Sample
	add := func(ts time.Time, i int) { out = append(out, fixtureSample(ts, i)) }
	i := 0
	for ts := time.Date(2026, 1, 20, 0, 10, 0, 0, time.UTC); ts.Before(seriesNow.Add(-5 * time.Minute)); ts = ts.Add(20 * time.Minute) {
		add(ts, i)
		i++
	}
	for _, ts := range []time.Time{
		time.Date(2025, 6, 3, 10, 0, 0, 0, time.UTC), time.Date(2025, 6, 3, 11, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC),
	} {
		add(ts, i)
		i++
	}
	return out
}

// fixtureSample is the i-th sample of a fixture, with values exact in binary.
func fixtureSample(ts time.Time, i int) telemetry.Sample {
	var counter *float64 // the inverter counter on most samples
	if i%5 != 0 {
		v := float64(i%40) / 4
		counter = &v
	}
	return telemetry.Sample{
		PVDailyKWh: counter,
		DeviceID:   device, TS: ts,
		PVPowerW:      float64((i*37)%3000) + 0.25,
		BatteryPowerW: float64((i*53)%2000) - 1000,
		BatterySoCPct: float64((i*7)%100) + 0.5,
		LoadPowerW:    float64((i*11)%1500) + 100,
		ExportPowerW:  float64((i*13)%1000) - 400.75,
		SampleCount:   int32(1 + i%3),
	}
}

func insertSamples(t *testing.T, pool *pgxpool.Pool, samples []telemetry.Sample) {
	t.Helper()
	store := telemetry.NewStore(pool)
	for len(samples) > 0 {
		n := min(len(samples), 1000)
		if _, err := store.Insert(context.Background(), device, samples[:n]); err != nil {
			t.Fatal(err)
		}
		samples = samples[n:]
	}
}

// expectedBucket is what a bucket must hold, computed here from the fixture.
type expectedBucket struct {
	bucket                                time.Time
	sumPV, maxPV, sumBat, sumSoC, sumLoad float64
	sumExport                             float64
	count                                 int64
}

// expectSeries groups samples in [from, to) by floor (a bucket start function).
func expectSeries(samples []telemetry.Sample, from, to time.Time, floor func(time.Time) time.Time) []expectedBucket {
	byStart := map[time.Time]*expectedBucket{}
	for _, s := range samples {
		if s.TS.Before(from) || !s.TS.Before(to) {
			continue
		}
		k := floor(s.TS)
		b := byStart[k]
		if b == nil {
			b = &expectedBucket{bucket: k, maxPV: math.Inf(-1)}
			byStart[k] = b
		}
		c := float64(s.SampleCount)
		b.sumPV += s.PVPowerW * c
		b.maxPV = max(b.maxPV, s.PVPowerW)
		b.sumBat += s.BatteryPowerW * c
		b.sumSoC += s.BatterySoCPct * c
		b.sumLoad += s.LoadPowerW * c
		b.sumExport += s.ExportPowerW * c
		b.count += int64(s.SampleCount)
	}
	out := make([]expectedBucket, 0, len(byStart))
	for _, b := range byStart {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b expectedBucket) int { return a.bucket.Compare(b.bucket) })
	return out
}

type seriesBody struct {
	DeviceID string `json:"device_id"`
	Frame    string `json:"frame"`
	Series   []struct {
		Bucket           string  `json:"bucket"`
		AvgPVPowerW      float64 `json:"avg_pv_power_w"`
		MaxPVPowerW      float64 `json:"max_pv_power_w"`
		AvgBatteryPowerW float64 `json:"avg_battery_power_w"`
		AvgBatterySoCPct float64 `json:"avg_battery_soc_pct"`
		AvgLoadPowerW    float64 `json:"avg_load_power_w"`
		AvgExportPowerW  float64 `json:"avg_export_power_w"`
		SampleCount      int64   `json:"sample_count"`
	} `json:"series"`
}

func checkSeries(t *testing.T, got seriesBody, want []expectedBucket, loc *time.Location) {
	t.Helper()
	if len(got.Series) != len(want) {
		t.Fatalf("%d buckets, want %d", len(got.Series), len(want))
	}
	near := func(field string, i int, g, w float64) {
		if math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Errorf("bucket %d %s = %v, want %v", i, field, g, w)
		}
	}
	for i, w := range want {
		g := got.Series[i]
		if wb := w.bucket.In(loc).Format(time.RFC3339); g.Bucket != wb {
			t.Fatalf("bucket %d starts %s, want %s", i, g.Bucket, wb)
		}
		c := float64(w.count)
		near("avg_pv_power_w", i, g.AvgPVPowerW, w.sumPV/c)
		near("max_pv_power_w", i, g.MaxPVPowerW, w.maxPV)
		near("avg_battery_power_w", i, g.AvgBatteryPowerW, w.sumBat/c)
		near("avg_battery_soc_pct", i, g.AvgBatterySoCPct, w.sumSoC/c)
		near("avg_load_power_w", i, g.AvgLoadPowerW, w.sumLoad/c)
		near("avg_export_power_w", i, g.AvgExportPowerW, w.sumExport/c)
		if g.SampleCount != w.count {
			t.Errorf("bucket %d sample_count = %d, want %d", i, g.SampleCount, w.count)
		}
	}
}

func newSeriesServer(t *testing.T, pool *pgxpool.Pool, reader httpapi.SeriesReader, late httpapi.LateDataNotifier,
	tweak ...func(*httpapi.Deps)) *httptest.Server {
	t.Helper()
	return newServer(t, pool, append([]func(*httpapi.Deps){func(d *httpapi.Deps) {
		d.Series = reader
		d.Now = func() time.Time { return seriesNow }
		if late != nil {
			d.LateData = late
		}
	}}, tweak...)...)
}

// getSeries returns the status and the raw body of GET /v1/series?query.
func getSeries(t *testing.T, url, query string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/v1/series?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func getSeriesOK(t *testing.T, url, query string) ([]byte, seriesBody) {
	t.Helper()
	status, raw := getSeries(t, url, query)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/series?%s: %d %s", query, status, raw)
	}
	var body seriesBody
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return raw, body
}

// frameCase is one request and the range and bucketing the answer must have.
type frameCase struct {
	query    string
	from, to time.Time
	floor    func(time.Time) time.Time
}

func frameCases(loc *time.Location) []frameCase {
	day := func(t time.Time) time.Time {
		t = t.In(loc)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	}
	month := func(t time.Time) time.Time {
		t = t.In(loc)
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	}
	hour := func(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
	d := func(y int, m time.Month, dd int) time.Time { return time.Date(y, m, dd, 0, 0, 0, 0, loc) }
	return []frameCase{
		{"frame=day", d(2026, 2, 15), d(2026, 2, 16), hour},
		{"frame=day&date=2026-02-01", d(2026, 2, 1), d(2026, 2, 2), hour},
		{"frame=week", d(2026, 2, 9), d(2026, 2, 16), day},                  // Sunday 15th: Monday 9th on
		{"frame=week&date=2026-01-21", d(2026, 1, 19), d(2026, 1, 26), day}, // a Wednesday
		{"frame=month", d(2026, 2, 1), d(2026, 3, 1), day},
		{"frame=month&date=2026-01-31", d(2026, 1, 1), d(2026, 2, 1), day},
		{"frame=year", d(2026, 1, 1), d(2027, 1, 1), month},
		{"frame=year&date=2025-07-01", d(2025, 1, 1), d(2026, 1, 1), month},
		{"frame=all", d(1970, 1, 1), d(2100, 1, 1), month},
		{"frame=all&date=2020-01-01", d(1970, 1, 1), d(2100, 1, 1), month},
	}
}

// TestSeriesFrames checks every frame against the fixture on both databases; on
// TimescaleDB also that the aggregates answer byte for byte as the raw path does,
// before and after `refresh` materializes them.
func TestSeriesFrames(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		fixture := seriesFixture()
		insertSamples(t, d.Pool, fixture)

		svc, info, err := series.Open(ctx, d.Pool, time.UTC)
		is.NoErr(err)
		if d.Timescale {
			is.Equal(info.Path, series.PathAggregates)
			is.Equal(info.AggregateZone, "UTC")
		} else {
			is.Equal(info.Path, series.PathRollup) // migration 8's 15-minute rollup
		}
		srv := newSeriesServer(t, d.Pool, svc, nil)
		rawSrv := newSeriesServer(t, d.Pool, series.NewRaw(d.Pool, time.UTC), nil)

		check := func(stage string) {
			for _, c := range frameCases(time.UTC) {
				raw, body := getSeriesOK(t, srv.URL, "device_id="+device+"&"+c.query)
				is.Equal(body.DeviceID, device)
				is.Equal(body.Frame, strings.TrimPrefix(strings.Split(c.query, "&")[0], "frame="))
				want := expectSeries(fixture, c.from, c.to, c.floor)
				if len(want) == 0 {
					t.Fatalf("%s: the fixture has nothing in this frame; the test would prove nothing", c.query)
				}
				t.Run(stage+"/"+c.query, func(t *testing.T) { checkSeries(t, body, want, time.UTC) })
				rawJSON, _ := getSeriesOK(t, rawSrv.URL, "device_id="+device+"&"+c.query)
				if string(raw) != string(rawJSON) {
					t.Errorf("%s %s: aggregate path and raw path differ:\n%s\n%s", stage, c.query, raw, rawJSON)
				}
			}
		}
		check("live")
		if !d.Timescale {
			return
		}
		for _, agg := range series.Aggregates {
			from, to := series.Window(agg, time.Time{}, time.Time{}, seriesNow, time.UTC)
			is.NoErr(series.Refresh(ctx, d.Pool, agg, from, to))
			is.True(materializedRows(t, d.Pool, agg) > 0) // the refresh materialized rows
		}
		check("materialized")

		// A sample in the current hour shows in frame=day at once, above the watermark.
		_, before := getSeriesOK(t, srv.URL, "device_id="+device+"&frame=day")
		insertSamples(t, d.Pool, []telemetry.Sample{{DeviceID: device, TS: seriesNow.Add(-time.Minute),
			PVPowerW: 1, BatterySoCPct: 50, SampleCount: 5}})
		_, after := getSeriesOK(t, srv.URL, "device_id="+device+"&frame=day")
		last := len(after.Series) - 1
		is.Equal(after.Series[last].Bucket, "2026-02-15T14:00:00Z")
		is.Equal(after.Series[last].SampleCount, before.Series[last].SampleCount+5)
	})
}

// materializedRows counts the rows in the materialization hypertable behind agg, not
// in the view (which would answer through real-time aggregation anyway).
func materializedRows(t *testing.T, pool *pgxpool.Pool, agg series.Aggregate) int {
	t.Helper()
	table := testenv.MaterializationTable(t, pool, string(agg))
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSeriesErrors(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		svc, _, err := series.Open(context.Background(), d.Pool, time.UTC)
		is.NoErr(err)
		srv := newSeriesServer(t, d.Pool, svc, nil)

		for _, q := range []string{"frame=hour", "frame=", "", "frame=DAY"} {
			status, raw := getSeries(t, srv.URL, "device_id="+device+"&"+q)
			is.Equal(status, http.StatusUnprocessableEntity)
			var p struct {
				Detail string            `json:"detail"`
				Errors map[string]string `json:"errors"`
			}
			is.NoErr(json.Unmarshal(raw, &p))
			is.True(strings.Contains(p.Detail, "day, week, month, year, all")) // lists the valid frames
			is.True(p.Errors["frame"] != "")
		}
		for _, date := range []string{"2026-02-30", "yesterday", "2026-2-1", "15.02.2026"} {
			status, raw := getSeries(t, srv.URL, "device_id="+device+"&frame=day&date="+date)
			is.Equal(status, http.StatusUnprocessableEntity)
			is.True(strings.Contains(string(raw), `"date"`))
		}
		status, raw := getSeries(t, srv.URL, "device_id=inverter-02&frame=day")
		is.Equal(status, http.StatusForbidden)
		status, _ = getSeries(t, srv.URL, "frame=day")
		is.Equal(status, http.StatusUnprocessableEntity)

		// No data: 200 with an empty list, not null.
		for _, f := range []string{"day", "week", "month", "year", "all"} {
			status, raw = getSeries(t, srv.URL, "device_id="+device+"&frame="+f)
			is.Equal(status, http.StatusOK)
			is.True(strings.Contains(string(raw), `"series":[]`))
		}
	})
}

// TestSeriesLateDataRefreshedInBackground: samples days old, ingested after the
// aggregates were materialized past them, show in frame=all without a command.
func TestSeriesLateDataRefreshedInBackground(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.TimescaleDB)
	ctx := context.Background()
	insertSamples(t, d.Pool, seriesFixture())
	for _, agg := range series.Aggregates {
		from, to := series.Window(agg, time.Time{}, time.Time{}, seriesNow, time.UTC)
		is.NoErr(series.Refresh(ctx, d.Pool, agg, from, to))
	}
	svc, _, err := series.Open(ctx, d.Pool, time.UTC)
	is.NoErr(err)
	lateSample := func(ts time.Time, count int) map[string]any {
		return map[string]any{"samples": []map[string]any{{
			"device_id": device, "ts": ts.Format(time.RFC3339), "pv_power_w": 10.0,
			"battery_power_w": 0.0, "battery_soc_pct": 50.0, "load_power_w": 5.0,
			"export_power_w": 5.0, "sample_count": count,
		}}}
	}
	february := func(url string) int64 {
		_, body := getSeriesOK(t, url, "device_id="+device+"&frame=all")
		last := body.Series[len(body.Series)-1]
		is.Equal(last.Bucket, "2026-02-01T00:00:00Z")
		return last.SampleCount
	}
	twoDaysAgo := seriesNow.Add(-48*time.Hour + time.Second) // off the fixture's grid

	// Without the refresher a late sample stays out: the materialized rows win.
	plain := newSeriesServer(t, d.Pool, svc, nil)
	base := february(plain.URL)
	is.Equal(post(t, plain.URL, token, lateSample(twoDaysAgo, 7)).body["inserted"], 1.0)
	is.Equal(february(plain.URL), base) // stale until refreshed

	r := series.NewRefresher(d.Pool, time.UTC, 50*time.Millisecond, slog.New(slog.NewJSONHandler(io.Discard, nil)),
		func() time.Time { return seriesNow })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	srv := newSeriesServer(t, d.Pool, svc, r)
	is.Equal(post(t, srv.URL, token, lateSample(twoDaysAgo.Add(5*time.Minute), 11)).body["inserted"], 1.0)

	want := base + 7 + 11 // the refresh takes in every late sample of its window
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for got := february(srv.URL); got != want; got = february(srv.URL) {
		if time.Now().After(deadline) {
			t.Fatalf("February holds %d samples 60 s after the late ingest, want %d", got, want)
		}
		<-tick.C
	}
}

// TestSeriesDaylightSaving: in Europe/Brussels the 2026 DST days have 23 and 25 hourly
// buckets and daily buckets begin at local midnight, on both databases; on TimescaleDB
// the aggregates are built in that zone and agree with the raw path.
func TestSeriesDaylightSaving(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	var fixture []telemetry.Sample
	i := 0
	for _, span := range [][2]time.Time{
		{time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC)},
	} {
		for ts := span[0]; ts.Before(span[1]); ts = ts.Add(15 * time.Minute) {
			fixture = append(fixture, telemetry.Sample{DeviceID: device, TS: ts,
				PVPowerW: float64(i % 500), BatterySoCPct: float64(i % 100), LoadPowerW: 0.5 * float64(i%300),
				SampleCount: int32(1 + i%2)})
			i++
		}
	}
	localDay := func(t time.Time) time.Time {
		t = t.In(brussels)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, brussels)
	}
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.NewInZone(t, b, "Europe/Brussels")
			insertSamples(t, d.Pool, fixture)

			svc, info, err := series.Open(ctx, d.Pool, brussels)
			is.NoErr(err)
			if d.Timescale {
				is.Equal(info.Path, series.PathAggregates)
				is.Equal(info.AggregateZone, "Europe/Brussels")
			}
			srv := newSeriesServer(t, d.Pool, svc, nil)
			rawSrv := newSeriesServer(t, d.Pool, series.NewRaw(d.Pool, brussels), nil)

			check := func() {
				for date, n := range map[string]int{"2026-03-29": 23, "2026-10-25": 25, "2026-03-30": 24} {
					_, body := getSeriesOK(t, srv.URL, "device_id="+device+"&frame=day&date="+date)
					is.Equal(len(body.Series), n)
					first, _ := time.Parse(time.RFC3339, body.Series[0].Bucket)
					is.Equal(first.In(brussels).Format(time.DateTime), date+" 00:00:00")
				}
				for _, c := range []struct {
					query    string
					from, to time.Time
				}{
					{"frame=week&date=2026-03-29", time.Date(2026, 3, 23, 0, 0, 0, 0, brussels), time.Date(2026, 3, 30, 0, 0, 0, 0, brussels)},
					{"frame=week&date=2026-03-30", time.Date(2026, 3, 30, 0, 0, 0, 0, brussels), time.Date(2026, 4, 6, 0, 0, 0, 0, brussels)},
					{"frame=month&date=2026-10-31", time.Date(2026, 10, 1, 0, 0, 0, 0, brussels), time.Date(2026, 11, 1, 0, 0, 0, 0, brussels)},
				} {
					raw, body := getSeriesOK(t, srv.URL, "device_id="+device+"&"+c.query)
					checkSeries(t, body, expectSeries(fixture, c.from, c.to, localDay), brussels)
					for _, bk := range body.Series {
						is.True(strings.HasPrefix(bk.Bucket[10:], "T00:00:00+0")) // local midnight
					}
					rawJSON, _ := getSeriesOK(t, rawSrv.URL, "device_id="+device+"&"+c.query)
					is.Equal(string(raw), string(rawJSON))
				}
			}
			check()
			if d.Timescale {
				for _, agg := range series.Aggregates {
					from, to := series.Window(agg, time.Time{}, time.Time{}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), brussels)
					is.NoErr(series.Refresh(ctx, d.Pool, agg, from, to))
				}
				check()
			}
		})
	}
}

// TestSeriesZoneChanged: aggregates built in UTC never serve Brussels buckets; the
// hourly aggregate is summed into Brussels days and months instead, exactly.
func TestSeriesZoneChanged(t *testing.T) {
	is := is.New(t)
	brussels, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.New(t, testenv.TimescaleDB)
	fixture := seriesFixture()
	insertSamples(t, d.Pool, fixture)
	svc, info, err := series.Open(context.Background(), d.Pool, brussels)
	is.NoErr(err)
	is.Equal(info.AggregateZone, "UTC")
	is.Equal(info.Path, series.PathHourlyRollup)
	srv := newSeriesServer(t, d.Pool, svc, nil)
	rawSrv := newSeriesServer(t, d.Pool, series.NewRaw(d.Pool, brussels), nil)
	for _, c := range frameCases(brussels) {
		raw, body := getSeriesOK(t, srv.URL, "device_id="+device+"&"+c.query)
		checkSeries(t, body, expectSeries(fixture, c.from, c.to, c.floor), brussels)
		rawJSON, _ := getSeriesOK(t, rawSrv.URL, "device_id="+device+"&"+c.query)
		is.Equal(string(raw), string(rawJSON))
	}
}

// TestSeriesFramesAtPinnedInstants: at every instant of testenv.Instants, in its zone
// and on both databases, each frame without date= covers the period that holds now,
// and with the date of the day before, the period that holds that day (a new week,
// month or year at the instants on an edge); weeks begin on Monday. On TimescaleDB the
// aggregates answer byte for byte as the raw path does, before and after a refresh.
func TestSeriesFramesAtPinnedInstants(t *testing.T) {
	instants := testenv.Instants(t)
	// Samples every 6 hours over the instants' years and every 20 minutes in the three
	// days before each instant, on fixed grids, so windows that overlap share samples.
	grid := map[time.Time]bool{}
	for ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2028, 3, 2, 0, 0, 0, 0, time.UTC)); ts = ts.Add(6 * time.Hour) {
		grid[ts] = true
	}
	for _, inst := range instants {
		for ts := inst.Now.UTC().Add(-72 * time.Hour).Truncate(20 * time.Minute).Add(10 * time.Minute); ts.Before(inst.Now); ts = ts.Add(20 * time.Minute) {
			grid[ts] = true // in UTC: map keys of one instant in two zones differ
		}
	}
	stamps := slices.SortedFunc(maps.Keys(grid), time.Time.Compare)
	fixture := make([]telemetry.Sample, len(stamps))
	for i, ts := range stamps {
		fixture[i] = fixtureSample(ts, i)
	}

	for _, b := range testenv.Backends {
		for _, zone := range testenv.CalendarZones {
			t.Run(string(b)+"/"+zone, func(t *testing.T) {
				t.Parallel()
				is := is.New(t)
				ctx := context.Background()
				d := testenv.NewInZone(t, b, zone)
				insertSamples(t, d.Pool, fixture)
				loc, err := time.LoadLocation(zone)
				is.NoErr(err)
				svc, info, err := series.Open(ctx, d.Pool, loc)
				is.NoErr(err)
				if d.Timescale {
					is.Equal(info.Path, series.PathAggregates)
				}
				var here []testenv.Instant
				for _, inst := range instants {
					if inst.Loc.String() == zone {
						here = append(here, inst)
					}
				}
				check := func(stage string) {
					for _, inst := range here {
						clock := func(dp *httpapi.Deps) { dp.Now = inst.Clock() }
						srv := newSeriesServer(t, d.Pool, svc, nil, clock)
						rawSrv := newSeriesServer(t, d.Pool, series.NewRaw(d.Pool, loc), nil, clock)
						for _, c := range instantFrameCases(inst) {
							raw, body := getSeriesOK(t, srv.URL, "device_id="+device+"&"+c.query)
							want := expectSeries(fixture, c.from, c.to, c.floor)
							if len(want) == 0 {
								t.Fatalf("%s %s: the fixture has nothing in this frame; the test would prove nothing", inst.Name, c.query)
							}
							t.Run(inst.Name+"/"+stage+"/"+c.query, func(t *testing.T) { checkSeries(t, body, want, loc) })
							rawJSON, _ := getSeriesOK(t, rawSrv.URL, "device_id="+device+"&"+c.query)
							if string(raw) != string(rawJSON) {
								t.Errorf("%s %s %s: aggregate path and raw path differ:\n%s\n%s", inst.Name, stage, c.query, raw, rawJSON)
							}
						}
					}
				}
				check("live")
				if !d.Timescale {
					return
				}
				// Materialized as of the latest instant, the earlier ones read materialized
				// buckets only, the latest its open ones through real-time aggregation too.
				latest := slices.MaxFunc(here, func(a, b testenv.Instant) int { return a.Now.Compare(b.Now) })
				for _, agg := range series.Aggregates {
					from, to := series.Window(agg, time.Time{}, time.Time{}, latest.Now, loc)
					is.NoErr(series.Refresh(ctx, d.Pool, agg, from, to))
				}
				check("materialized")
			})
		}
	}
}

// instantFrameCases are the frames at inst, their periods worked out here: each frame
// without a date and with the date of the day before, and all.
func instantFrameCases(inst testenv.Instant) []frameCase {
	loc := inst.Loc
	midnight := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, loc) }
	hour := func(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
	day := func(t time.Time) time.Time { t = t.In(loc); return midnight(t.Year(), t.Month(), t.Day()) }
	month := func(t time.Time) time.Time { t = t.In(loc); return midnight(t.Year(), t.Month(), 1) }
	period := func(frame string, t time.Time) (time.Time, time.Time) {
		y, m, d := t.Date()
		switch frame {
		case "day":
			return midnight(y, m, d), midnight(y, m, d+1)
		case "week":
			monday := d - (int(t.Weekday())+6)%7
			return midnight(y, m, monday), midnight(y, m, monday+7)
		case "month":
			return midnight(y, m, 1), midnight(y, m+1, 1)
		}
		return midnight(y, 1, 1), midnight(y+1, 1, 1)
	}
	floors := map[string]func(time.Time) time.Time{"day": hour, "week": day, "month": day, "year": month}
	yesterday := inst.Now.AddDate(0, 0, -1)
	var out []frameCase
	for _, frame := range []string{"day", "week", "month", "year"} {
		from, to := period(frame, inst.Now)
		out = append(out, frameCase{"frame=" + frame, from, to, floors[frame]})
		from, to = period(frame, yesterday)
		out = append(out, frameCase{"frame=" + frame + "&date=" + yesterday.Format(time.DateOnly), from, to, floors[frame]})
	}
	return append(out, frameCase{"frame=all", midnight(1970, 1, 1), midnight(2100, 1, 1), month})
}
