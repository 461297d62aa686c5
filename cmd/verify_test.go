package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

const backfillDevice, backfillToken = "inverter-bxl", "sg_backfill-test-token"

// backfillSamples is issue #20's edge back from an outage: samples every 7 minutes from
// March 10 to May 1 (its last two hours are May 1 in Brussels) and over the October
// days around the end of daylight saving, 1 kW of PV each.
func backfillSamples() []telemetry.Sample {
	var out []telemetry.Sample
	for _, span := range [][2]time.Time{
		{time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 10, 23, 20, 0, 0, 0, time.UTC), time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)},
	} {
		for ts := span[0]; ts.Before(span[1]); ts = ts.Add(7 * time.Minute) {
			out = append(out, telemetry.Sample{DeviceID: backfillDevice, TS: ts, PVPowerW: 1000, LoadPowerW: 400,
				ExportPowerW: 600, BatterySoCPct: 50, SampleCount: 1})
		}
	}
	return out
}

// frameBucket is what the test compares of a bucket: its start and its samples (and
// so its energy: every sample is 1 kW of PV for SAMPLE_INTERVAL_S).
type frameBucket struct {
	Bucket      time.Time `json:"bucket"`
	SampleCount int64     `json:"sample_count"`
	PVKWh       float64   `json:"pv_kwh"`
}

// backfillFrames are the frames the test reads, each with the bucket size it has.
var backfillFrames = []struct {
	frame, date string
	agg         series.Aggregate
}{
	{"year", "2026-06-01", series.Monthly}, {"all", "2026-06-01", series.Monthly},
	{"month", "2026-03-01", series.Daily}, {"month", "2026-04-01", series.Daily}, {"month", "2026-05-01", series.Daily},
	{"month", "2026-10-01", series.Daily}, {"week", "2026-10-26", series.Daily},
	{"day", "2026-05-01", series.Hourly}, {"day", "2026-10-25", series.Hourly},
}

// rawFrame is the frame computed here from the samples themselves, the truth the
// server's answers must equal.
func rawFrame(samples []telemetry.Sample, frame, date string, agg series.Aggregate, loc *time.Location) []frameBucket {
	day, _ := time.ParseInLocation(time.DateOnly, date, loc)
	from, to := time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, loc)
	switch frame {
	case "year":
		from, to = time.Date(day.Year(), 1, 1, 0, 0, 0, 0, loc), time.Date(day.Year()+1, 1, 1, 0, 0, 0, 0, loc)
	case "month":
		from, to = time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc), time.Date(day.Year(), day.Month()+1, 1, 0, 0, 0, 0, loc)
	case "week": // date is a Monday
		from, to = day, day.AddDate(0, 0, 7)
	case "day":
		from, to = day, day.AddDate(0, 0, 1)
	}
	var out []frameBucket
	for _, s := range samples {
		if s.TS.Before(from) || !s.TS.Before(to) {
			continue
		}
		b := agg.Floor(s.TS, loc)
		if len(out) == 0 || !out[len(out)-1].Bucket.Equal(b) {
			out = append(out, frameBucket{Bucket: b})
		}
		out[len(out)-1].SampleCount++
		out[len(out)-1].PVKWh += 5.0 / 3600 // 1 kW for 5 s
	}
	return out
}

// sameFrames reports the first way got differs from the raw samples' frames, or "".
func sameFrames(samples []telemetry.Sample, loc *time.Location, get func(frame, date string) []frameBucket) string {
	for _, f := range backfillFrames {
		want, got := rawFrame(samples, f.frame, f.date, f.agg, loc), get(f.frame, f.date)
		if len(got) != len(want) {
			return fmt.Sprintf("frame=%s date=%s: %d buckets, the samples make %d", f.frame, f.date, len(got), len(want))
		}
		for i := range want {
			if !got[i].Bucket.Equal(want[i].Bucket) || got[i].SampleCount != want[i].SampleCount ||
				math.Abs(got[i].PVKWh-want[i].PVKWh) > 1e-9*want[i].PVKWh {
				return fmt.Sprintf("frame=%s date=%s: bucket %+v, the samples make %+v", f.frame, f.date, got[i], want[i])
			}
		}
	}
	return ""
}

// httpFrames reads frames through GET /v1/series.
func httpFrames(t *testing.T, base string) func(frame, date string) []frameBucket {
	return func(frame, date string) []frameBucket {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/series?device_id="+backfillDevice+"&frame="+frame+"&date="+date, nil)
		req.Header.Set("Authorization", "Bearer "+backfillToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Series []frameBucket }
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
			t.Fatalf("GET /v1/series frame=%s date=%s: %s", frame, date, res.Status)
		}
		return body.Series
	}
}

// dbFrames reads frames the way serve does (from the aggregates on TimescaleDB).
func dbFrames(t *testing.T, pool *pgxpool.Pool, loc *time.Location) func(frame, date string) []frameBucket {
	svc, _, err := series.Open(context.Background(), pool, loc)
	if err != nil {
		t.Fatal(err)
	}
	svc = svc.WithInterval(series.FixedInterval(5 * time.Second))
	return func(frame, date string) []frameBucket {
		day, _ := time.ParseInLocation(time.DateOnly, date, loc)
		res, err := svc.Series(context.Background(), backfillDevice, frame, day)
		if err != nil {
			t.Fatal(err)
		}
		var out []frameBucket
		for _, b := range res.Buckets {
			out = append(out, frameBucket{Bucket: b.Bucket, SampleCount: b.SampleCount, PVKWh: b.PVKWh})
		}
		return out
	}
}

func postBackfill(t *testing.T, base string, samples []telemetry.Sample) {
	t.Helper()
	for i := 0; i < len(samples); i += 900 {
		body, _ := json.Marshal(map[string]any{"samples": samples[i:min(i+900, len(samples))]})
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+backfillToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/ingest: %s %s", res.Status, msg)
		}
	}
}

// TestBackfillInZoneStaysRight is issue #20 end to end: the backfill through HTTP with
// default settings gives every frame the raw samples' numbers once the late-data
// refresher is done, and again after `sungrow refresh`; on TimescaleDB `verify` then
// finds the damage the upstream bug does, `verify --repair` mends it, and so does
// serve's audit at AGGREGATE_AUDIT_S=3, counting it in /metrics.
func TestBackfillInZoneStaysRight(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			loc, err := time.LoadLocation("Europe/Brussels")
			is.NoErr(err)
			d := testenv.NewInZone(t, b, "Europe/Brussels")
			d.Pool.Close() // serve and the commands open their own (the test server serves one)
			env := map[string]string{"DATABASE_URL": d.URL, "SUNGROW_TZ": "Europe/Brussels",
				"DEVICE_TOKENS": backfillToken + ":" + backfillDevice}
			samples := backfillSamples()

			t.Run("serve", func(t *testing.T) {
				s := startServe(t, env)
				postBackfill(t, s.Base, samples)
				posted := len(s.Logs.String())
				// Right at once (real-time aggregation), and right once the late-data
				// refresher has materialized everything the backfill touched.
				testenv.Await(t, "frames equal to the raw samples after the late-data refresh", 45*time.Second, func() bool {
					refreshed := !d.Timescale || strings.Contains(s.Logs.String()[posted:], `"aggregate":"sungrow_monthly"`)
					return refreshed && sameFrames(samples, loc, httpFrames(t, s.Base)) == ""
				})
			})

			out, _, err := run(ctx, env, "refresh")
			is.NoErr(err)
			pool, err := pgxpool.New(ctx, d.URL)
			is.NoErr(err)
			is.Equal(sameFrames(samples, loc, dbFrames(t, pool, loc)), "") // the same after `sungrow refresh`
			pool.Close()

			out, _, err = run(ctx, env, "verify")
			is.NoErr(err) // sound: exit 0
			if !d.Timescale {
				// Plain PostgreSQL: the 15-minute rollup against the raw samples, its
				// days against the quarter hours.
				is.True(strings.Contains(out, "checked sungrow_rollup from the beginning"))
				is.True(strings.Contains(out, "checked sungrow_rollup_daily from the beginning"))
				is.True(strings.Contains(out, "all buckets agree"))
				return
			}
			is.True(strings.Contains(out, "all buckets agree"))
			is.True(strings.Contains(out, "checked sungrow_monthly from the beginning"))

			damage := func() {
				pool, err := pgxpool.New(ctx, d.URL)
				is.NoErr(err)
				defer pool.Close()
				testenv.DeleteMaterialized(t, pool, "sungrow_monthly", time.Date(2026, 4, 1, 0, 0, 0, 0, loc))
				testenv.InflateMaterialized(t, pool, "sungrow_daily", time.Date(2026, 3, 15, 0, 0, 0, 0, loc), 5)
			}
			damage()
			out, _, err = run(ctx, env, "verify")
			is.True(err != nil) // exit 1
			is.True(strings.Contains(out, "sungrow_monthly\tinverter-bxl\t2026-04-01T00:00:00+02:00\tmissing"))
			is.True(strings.Contains(out, "sungrow_daily\tinverter-bxl\t2026-03-15T00:00:00+01:00\tsample_count "))
			out, _, err = run(ctx, env, "verify", "--json")
			is.True(err != nil)
			var report struct {
				Differing []series.Mismatch `json:"differing"`
			}
			is.NoErr(json.Unmarshal([]byte(out), &report))
			is.Equal(len(report.Differing), 3) // the day, March against its days, April

			out, _, err = run(ctx, env, "verify", "--repair")
			is.NoErr(err) // mended: exit 0
			is.True(strings.Contains(out, "all agree now"))
			_, _, err = run(ctx, env, "verify")
			is.NoErr(err)
			pool, err = pgxpool.New(ctx, d.URL)
			is.NoErr(err)
			is.Equal(sameFrames(samples, loc, dbFrames(t, pool, loc)), "")
			pool.Close()

			damage()
			audited := maps.Clone(env)
			audited["AGGREGATE_AUDIT_S"] = "3"
			t.Run("audit", func(t *testing.T) {
				s := startServe(t, audited)
				testenv.Await(t, "the audit to mend both buckets", 45*time.Second, func() bool {
					m := metricsText(t, s.Base)
					return strings.Contains(m, `sungrow_aggregate_repairs_total{aggregate="sungrow_monthly"} 1`) &&
						strings.Contains(m, `sungrow_aggregate_repairs_total{aggregate="sungrow_daily"} 1`)
				})
				is.True(strings.Contains(metricsText(t, s.Base), "sungrow_aggregate_audit_seconds "))
				is.True(strings.Contains(s.Logs.String(), `"aggregate":"sungrow_monthly","device_id":"inverter-bxl","bucket":"2026-04-01T00:00:00+02:00"`))
				is.Equal(sameFrames(samples, loc, httpFrames(t, s.Base)), "")
			})
		})
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
