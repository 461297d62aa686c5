package cmd_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
)

// readsOn is sungrow_db_reads_total{target} on an instance's /metrics.
func readsOn(t *testing.T, base, target string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^sungrow_db_reads_total\{target="` + target + `"\} (\S+)$`).
		FindStringSubmatch(scrape(t, strings.TrimPrefix(base, "http://")))
	if m == nil {
		t.Fatalf("no sungrow_db_reads_total{target=%q} on /metrics", target)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	return n
}

// TestServeReadsFromAStandby runs serve on a plain PostgreSQL primary of the test's
// own twice, once with DATABASE_READ_URL at a streaming standby of it: every frame,
// money included, in JSON and CSV, answers the same from both, and the standby's
// statement log shows those reads ran there; with its replay paused a new sample is in
// /v1/realtime at once and in frame=day within READ_MAX_LAG_S + 2 s; stopped, every
// read answers 200; started again, reads return to it within 40 s; it is never asked
// to write.
func TestServeReadsFromAStandby(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	primary := testenv.StartPostgres(t)
	env := map[string]string{"DATABASE_URL": primary.URL("sungrow"), "DEVICE_TOKENS": "tok:inverter-01",
		"SUNGROW_TZ": "Europe/Brussels", "CACHE_TTL_S": "60"}
	_, _, err := run(ctx, env, "migrate", "up")
	is.NoErr(err)
	_, _, err = run(ctx, env, "tariff", "set", "--from", "2026-01-01", "--import", "0.30", "--export", "0.08")
	is.NoErr(err)
	_, _, err = run(ctx, env, "tariff", "set", "--from", "2026-02-05", "--import", "0.21", "--export", "0.05",
		"--window", "22:00-06:00", "--days", "mon-sun")
	is.NoErr(err)
	standby := primary.StartStandby(t)

	plain := startServe(t, env)
	// A password (trust ignores it) that must never reach the log.
	readURL := strings.Replace(standby.URL("sungrow"), "postgres@", "postgres:s3cret-pw@", 1)
	withReads := map[string]string{"DATABASE_READ_URL": readURL, "READ_MAX_LAG_S": "1"}
	for k, v := range env {
		withReads[k] = v
	}
	replicated := startServe(t, withReads)

	// Ten days every 15 minutes, through the instance with replicas (ingest: primary).
	var samples []string
	for ts := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC)); ts = ts.Add(15 * time.Minute) {
		i := len(samples)
		samples = append(samples, fmt.Sprintf(`{"device_id":"inverter-01","ts":%q,"pv_power_w":%d,"battery_power_w":%d,"battery_soc_pct":%d,"load_power_w":%d,"export_power_w":%d}`,
			ts.Format(time.RFC3339), (i*37)%3000, (i*53)%2000-1000, (i*7)%100, (i*11)%1500+100, (i*13)%1000-500))
	}
	ingest := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, replicated.Base+"/v1/ingest", strings.NewReader(`{"samples":[`+body+`]}`))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusOK)
	}
	ingest(strings.Join(samples, ","))

	standbyPool, err := pgxpool.New(ctx, standby.URL("sungrow"))
	is.NoErr(err)
	defer standbyPool.Close()
	testenv.Await(t, "the standby to replay the samples", 30*time.Second, func() bool {
		var n int
		return standbyPool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&n) == nil && n == len(samples)
	})
	testenv.Await(t, "the standby to be used", 30*time.Second, func() bool {
		_, body := replicated.get(t, "/ready", "")
		return strings.Contains(body, `"replica1":"ok"`)
	})

	onReplica := readsOn(t, replicated.Base, "replica")
	var paths []string
	for _, f := range []string{"day&date=2026-02-04", "day&date=2026-02-05", "week&date=2026-02-04", "month&date=2026-02-10",
		"year&date=2026-02-10", "all"} {
		paths = append(paths, "/v1/series?device_id=inverter-01&frame="+f, "/v1/series?device_id=inverter-01&format=csv&frame="+f)
	}
	paths = append(paths, "/v1/quarantine?device_id=inverter-01")
	for _, p := range paths {
		status, want := plain.get(t, p, "tok")
		is.Equal(status, http.StatusOK)
		status, got := replicated.get(t, p, "tok")
		is.Equal(status, http.StatusOK)
		if got != want {
			t.Errorf("%s: with DATABASE_READ_URL\n%s\nwithout\n%s", p, got, want)
		}
	}
	_, month := plain.get(t, "/v1/series?device_id=inverter-01&frame=month&date=2026-02-10", "tok")
	is.True(strings.Contains(month, `"net_cost":`))
	is.True(readsOn(t, replicated.Base, "replica")-onReplica >= float64(len(paths))) // each read ran at least one query there
	log := standby.Log(t)
	is.True(strings.Contains(log, "FROM sungrow_samples"))    // the series reads ran on the standby
	is.True(strings.Contains(log, "FROM sungrow_tariffs"))    // and their pricing
	is.True(strings.Contains(log, "FROM sungrow_quarantine")) // and the quarantine's
	is.True(strings.Contains(scrape(t, strings.TrimPrefix(replicated.Base, "http://")), `sungrow_db_replica_lag_seconds{replica="replica1"}`))

	// Replay paused: a new sample shows in realtime at once (the primary), and in
	// frame=day within READ_MAX_LAG_S + 2 s (the read left the standby).
	_, err = standbyPool.Exec(ctx, "SELECT pg_wal_replay_pause()")
	is.NoErr(err)
	ingest(`{"device_id":"inverter-01","ts":"2026-02-11T10:00:00Z","pv_power_w":1234,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":300,"export_power_w":900}`)
	ingested := time.Now()
	status, body := replicated.get(t, "/v1/realtime?device_id=inverter-01", "tok")
	is.Equal(status, http.StatusOK)
	is.True(strings.Contains(body, `"2026-02-11T10:00:00Z"`))
	testenv.Await(t, "the new sample in frame=day", 3*time.Second-time.Since(ingested), func() bool {
		status, body := replicated.get(t, "/v1/series?device_id=inverter-01&frame=day&date=2026-02-11", "tok")
		return status == http.StatusOK && strings.Contains(body, `"max_pv_power_w":1234`)
	})
	_, body = replicated.get(t, "/ready", "")
	is.True(strings.Contains(body, `"replica1":"lagging`))
	is.True(strings.Contains(body, `"status":"ready"`))
	_, err = standbyPool.Exec(ctx, "SELECT pg_wal_replay_resume()")
	is.NoErr(err)
	standbyPool.Close()

	// Stopped: every read answers; started again: reads return to it within 40 s.
	standby.Stop(t)
	for range 20 {
		for _, p := range paths {
			status, _ := replicated.get(t, p, "tok")
			is.Equal(status, http.StatusOK)
		}
	}
	_, body = replicated.get(t, "/ready", "")
	is.True(strings.Contains(body, `"replica1":"down`))
	standby.Start(t)
	restarted := readsOn(t, replicated.Base, "replica")
	testenv.Await(t, "reads on the restarted standby", 40*time.Second, func() bool {
		replicated.get(t, paths[0], "tok")
		return readsOn(t, replicated.Base, "replica") > restarted
	})

	for _, line := range strings.Split(standby.Log(t), "\n") {
		if regexp.MustCompile(`(?i)statement: *(INSERT|UPDATE|DELETE|CREATE|REFRESH)|read-only transaction`).MatchString(line) {
			t.Errorf("the standby was asked to write: %s", line)
		}
	}
	is.True(strings.Contains(replicated.Logs.String(), `"replica":"replica1"`)) // the replica's states are logged
	is.True(!strings.Contains(replicated.Logs.String(), "s3cret-pw"))           // without its password
}
