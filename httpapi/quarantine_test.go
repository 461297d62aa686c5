package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

func countQuarantine(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM sungrow_quarantine").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// quarantineDump is the whole quarantine table as text, to compare before and after.
func quarantineDump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var dump string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(
		device_id || ' ' || ts::text || ' ' || field || ' ' || reason || ' ' || received_at::text || ' ' || sample::text,
		E'\n' ORDER BY device_id, ts, field), '') FROM sungrow_quarantine`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	return dump
}

func storedTS(t *testing.T, pool *pgxpool.Pool, ts time.Time) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM sungrow_samples WHERE ts = $1", ts).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func getAs(t *testing.T, url, tok string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

// TestIngestSetsImplausibleSamplesAside: one implausible sample among five good ones is
// set aside, the five are stored, nothing else sees it, and re-sending changes nothing.
func TestIngestSetsImplausibleSamplesAside(t *testing.T) {
	tests := []struct {
		name   string
		set    map[string]any // fields of the bad sample
		fields []string       // its implausible fields
		reason string         // of the first field
	}{
		{"ts from a reset clock", map[string]any{"ts": "1970-01-01T00:00:10Z"}, []string{"ts"}, telemetry.ReasonClockBehind},
		{"ts 3 days ahead", map[string]any{"ts": fixedNow.Add(72 * time.Hour).Format(time.RFC3339)}, []string{"ts"}, telemetry.ReasonClockAhead},
		{"soc 150", map[string]any{"battery_soc_pct": 150}, []string{"battery_soc_pct"}, telemetry.ReasonSoCOutOfRange},
		{"soc -1", map[string]any{"battery_soc_pct": -1}, []string{"battery_soc_pct"}, telemetry.ReasonSoCOutOfRange},
		{"sample_count 0", map[string]any{"sample_count": 0}, []string{"sample_count"}, telemetry.ReasonSampleCountBelow},
		{"clock and soc both", map[string]any{"ts": "1970-01-01T00:00:20Z", "battery_soc_pct": 255},
			[]string{"battery_soc_pct", "ts"}, telemetry.ReasonSoCOutOfRange},
	}
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.Series = series.NewRaw(d.Pool, time.UTC) })
		stored := 0
		for k, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				// Case k uses samples 100k..100k+5; the bad one's own ts is 100k+50.
				bad := sampleJSON(100*k + 50)
				for f, v := range tt.set {
					bad[f] = v
				}
				badTS, err := time.Parse(time.RFC3339, bad["ts"].(string))
				is.NoErr(err)
				body := batch(100*k, 100*k+5)
				body["samples"] = append([]map[string]any{bad}, body["samples"].([]map[string]any)...)

				res := post(t, srv.URL, token, body)
				is.Equal(res.status, http.StatusOK)
				is.Equal(res.body["inserted"], 5.0)
				is.Equal(res.body["quarantined"], 1.0)
				problems := res.body["problems"].(map[string]any)
				is.Equal(len(problems), len(tt.fields))
				for _, f := range tt.fields {
					is.True(problems["samples[0]."+f] != nil) // named as a 422 would
				}
				stored += 5
				is.Equal(countRows(t, d.Pool), stored) // the five good ones
				for i := 100 * k; i < 100*k+5; i++ {
					ts, _ := time.Parse(time.RFC3339, sampleJSON(i)["ts"].(string))
					is.True(storedTS(t, d.Pool, ts))
				}
				is.True(!storedTS(t, d.Pool, badTS)) // the bad one only in the quarantine

				var field, reason string
				var receivedAt time.Time
				var sample map[string]any
				is.NoErr(d.Pool.QueryRow(context.Background(), `SELECT field, reason, received_at, sample
					FROM sungrow_quarantine WHERE device_id = $1 AND ts = $2 ORDER BY field LIMIT 1`, device, badTS).
					Scan(&field, &reason, &receivedAt, &sample))
				is.Equal(field, tt.fields[0])
				is.Equal(reason, tt.reason)
				is.True(receivedAt.Equal(fixedNow)) // the server's clock at arrival
				for f, v := range tt.set {
					if n, ok := v.(int); ok {
						v = float64(n)
					}
					is.Equal(sample[f], v) // kept as received
				}
				is.Equal(sample["device_id"], device)

				before := quarantineDump(t, d.Pool)
				res = post(t, srv.URL, token, body) // the edge re-sends
				is.Equal(res.status, http.StatusOK)
				is.Equal(res.body["inserted"], 0.0)
				is.Equal(res.body["quarantined"], 1.0) // the batch still has it
				is.Equal(quarantineDump(t, d.Pool), before)

				// Realtime shows the newest good sample, not a future one.
				rt := getAs(t, srv.URL+"/v1/realtime?device_id="+device, token)
				is.Equal(rt.status, http.StatusOK)
				is.Equal(rt.body["ts"], sampleJSON(100*k + 4)["ts"])
				// The series count the good samples only.
				sr := getAs(t, srv.URL+"/v1/series?device_id="+device+"&frame=all", token)
				is.Equal(sr.status, http.StatusOK)
				var counted float64
				for _, b := range sr.body["series"].([]any) {
					counted += b.(map[string]any)["sample_count"].(float64)
				}
				is.Equal(counted, float64(stored))
			})
		}
	})
}

func TestIngestAllImplausibleStoresNothingButTheQuarantine(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)
		var samples []map[string]any
		for i := range 3 {
			s := sampleJSON(i)
			s["ts"] = time.Unix(int64(i)*5, 0).UTC().Format(time.RFC3339)
			samples = append(samples, s)
		}
		res := post(t, srv.URL, token, map[string]any{"samples": samples})
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["inserted"], 0.0)
		is.Equal(res.body["quarantined"], 3.0)
		is.Equal(countRows(t, d.Pool), 0)
		is.Equal(countQuarantine(t, d.Pool), 3)
		// The same implausible sample twice in one batch: both counted, one row.
		twice := sampleJSON(9)
		twice["ts"] = "1970-01-02T00:00:00Z"
		res = post(t, srv.URL, token, map[string]any{"samples": []any{twice, twice}})
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["quarantined"], 2.0)
		is.Equal(countQuarantine(t, d.Pool), 4)
		// A plausible batch answers as before: no problems.
		res = post(t, srv.URL, token, batch(0, 2))
		is.Equal(res.body["quarantined"], 0.0)
		is.Equal(res.body["problems"], nil)
	})
}

// TestQuarantineIsBoundedPerDevice: beyond QUARANTINE_MAX_PER_DEVICE the oldest
// arrivals go, in the transaction that added the new ones; other devices keep theirs.
func TestQuarantineIsBoundedPerDevice(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		var mu sync.Mutex
		now := fixedNow
		srv := newServer(t, d.Pool, func(deps *httpapi.Deps) {
			deps.Samples = telemetry.NewStore(d.Pool, telemetry.WithQuarantineMax(3))
			deps.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		})
		reset := func(device string, from, n int) map[string]any {
			var samples []map[string]any
			for i := from; i < from+n; i++ {
				s := sampleJSON(i)
				s["device_id"] = device
				s["ts"] = time.Unix(int64(i), 0).UTC().Format(time.RFC3339)
				samples = append(samples, s)
			}
			return map[string]any{"samples": samples}
		}
		is.Equal(post(t, srv.URL, "other-token", reset("inverter-02", 0, 2)).status, http.StatusOK)
		for b := range 4 { // four arrivals of two samples each, a minute apart
			mu.Lock()
			now = fixedNow.Add(time.Duration(b) * time.Minute)
			mu.Unlock()
			res := post(t, srv.URL, token, reset(device, 10*b, 2))
			is.Equal(res.status, http.StatusOK)
			is.Equal(res.body["quarantined"], 2.0)
		}
		rows, err := d.Pool.Query(context.Background(),
			`SELECT extract(epoch FROM ts)::int FROM sungrow_quarantine WHERE device_id = $1 ORDER BY ts`, device)
		is.NoErr(err)
		var kept []int
		for rows.Next() {
			var ts int
			is.NoErr(rows.Scan(&ts))
			kept = append(kept, ts)
		}
		is.NoErr(rows.Err())
		is.Equal(kept, []int{21, 30, 31})       // the newest arrival whole, then the newest of the one before
		is.Equal(countQuarantine(t, d.Pool), 5) // inverter-02's two stay
	})
}

func TestQuarantineEndpoint(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)
		base := srv.URL + "/v1/quarantine"

		is.Equal(getAs(t, base+"?device_id="+device, "").status, http.StatusUnauthorized)
		is.Equal(getAs(t, base+"?device_id="+device, "nope").status, http.StatusUnauthorized)
		is.Equal(getAs(t, base+"?device_id=inverter-02", token).status, http.StatusForbidden)
		is.Equal(getAs(t, base, token).status, http.StatusUnprocessableEntity)

		res := getAs(t, base+"?device_id="+device, token) // none yet
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["readings"], 0.0)
		is.Equal(res.body["since"], nil)
		is.Equal(res.body["entries"], []any{})

		// 150 samples from a reset clock, then one with a bad SoC as well.
		var samples []map[string]any
		for i := range 150 {
			s := sampleJSON(i)
			s["ts"] = time.Unix(int64(i)*5, 0).UTC().Format(time.RFC3339)
			samples = append(samples, s)
		}
		is.Equal(post(t, srv.URL, token, map[string]any{"samples": samples}).status, http.StatusOK)
		bad := sampleJSON(1)
		bad["battery_soc_pct"] = 255
		is.Equal(post(t, srv.URL, token, map[string]any{"samples": []any{bad}}).status, http.StatusOK)

		res = getAs(t, base+"?device_id="+device, token)
		is.Equal(res.status, http.StatusOK)
		is.Equal(res.body["device_id"], device)
		is.Equal(res.body["readings"], 151.0)
		is.Equal(res.body["since"], fixedNow.Format(time.RFC3339))
		is.Equal(res.body["reasons"], map[string]any{telemetry.ReasonClockBehind: 150.0, telemetry.ReasonSoCOutOfRange: 1.0})
		entries := res.body["entries"].([]any)
		is.Equal(len(entries), 100) // at most 100
		first := entries[0].(map[string]any)
		is.Equal(first["field"], "battery_soc_pct") // newest first, then by ts descending
		is.Equal(first["reason"], telemetry.ReasonSoCOutOfRange)
		is.Equal(first["detail"], "must be between 0 and 100")
		is.Equal(first["sample"].(map[string]any)["battery_soc_pct"], 255.0)
		second := entries[1].(map[string]any)
		is.Equal(second["ts"], time.Unix(149*5, 0).UTC().Format(time.RFC3339))
		is.True(strings.Contains(second["detail"].(string), "clock"))
	})
}

// TestIngestQuarantineWarnsOncePerMinuteAndCounts: serve logs one warning per device a
// minute however often its edge re-sends, and /metrics counts every set-aside sample.
func TestIngestQuarantineWarnsOncePerMinuteAndCounts(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	var logs testenv.LogBuffer
	var mu sync.Mutex
	now := fixedNow
	at := func(offset time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = fixedNow.Add(offset)
	}
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		deps.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	bad := func(dev string) map[string]any {
		s := sampleJSON(0)
		s["device_id"] = dev
		s["ts"] = "1970-01-01T00:00:10Z"
		return map[string]any{"samples": []any{s}}
	}
	warnings := func() int { return strings.Count(logs.String(), `"msg":"implausible samples set aside"`) }

	is.Equal(post(t, srv.URL, token, bad(device)).status, http.StatusOK)
	is.Equal(warnings(), 1)
	at(30 * time.Second)
	is.Equal(post(t, srv.URL, token, bad(device)).status, http.StatusOK)
	is.Equal(warnings(), 1) // within the minute: quiet
	is.Equal(post(t, srv.URL, "other-token", bad("inverter-02")).status, http.StatusOK)
	is.Equal(warnings(), 2) // another device has its own minute
	at(61 * time.Second)
	is.Equal(post(t, srv.URL, token, bad(device)).status, http.StatusOK)
	is.Equal(warnings(), 3)
	is.True(strings.Contains(logs.String(), `"device_id":"inverter-01"`))
	is.True(strings.Contains(logs.String(), "samples[0].ts: before 2000-01-02"))

	res, err := http.Get(srv.URL + "/metrics")
	is.NoErr(err)
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	is.True(strings.Contains(string(metrics), `sungrow_ingest_samples_quarantined_total{reason="clock_behind"} 4`))
}

// TestRetryingEdgeWithAWrongClockIsNotStuck drives an edge client that keeps a refused
// batch at the head of its spool and re-sends it forever (as the reference edge does)
// through a clock that starts in 1970 and jumps to the right time once NTP syncs: after
// the jump every sample with a good clock is stored and the spool is empty.
func TestRetryingEdgeWithAWrongClockIsNotStuck(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newServer(t, d.Pool)
		const batchSize, ticks, jumpAt = 4, 40, 10
		var spool []map[string]any // oldest first
		var good []time.Time
		refused := 0
		for tick := range ticks {
			// The inverter is read every 5 s; the clock says 1970 until NTP syncs.
			ts := time.Unix(int64(tick)*5, 0).UTC()
			if tick >= jumpAt {
				ts = fixedNow.Add(-time.Hour + time.Duration(tick)*5*time.Second)
				good = append(good, ts)
			}
			s := sampleJSON(tick)
			s["ts"] = ts.Format(time.RFC3339)
			spool = append(spool, s)

			head := spool[:min(batchSize, len(spool))]
			res := post(t, srv.URL, token, map[string]any{"samples": head})
			if res.status != http.StatusOK {
				refused++ // kept at the head, re-sent next tick
				continue
			}
			spool = spool[len(head):]
		}
		// Drain what is left, as the edge's loop would on its next ticks.
		for tries := 0; len(spool) > 0 && tries < 100; tries++ {
			head := spool[:min(batchSize, len(spool))]
			if post(t, srv.URL, token, map[string]any{"samples": head}).status == http.StatusOK {
				spool = spool[len(head):]
			}
		}
		is.Equal(refused, 0)
		is.Equal(len(spool), 0) // the queue is empty
		is.Equal(countRows(t, d.Pool), len(good))
		for _, ts := range good {
			is.True(storedTS(t, d.Pool, ts)) // every good-clock sample is stored
		}
		is.Equal(countQuarantine(t, d.Pool), jumpAt) // the 1970 ones are set aside
	})
}
