package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
	"github.com/sungrow/sungrow/loadtest"
	"github.com/sungrow/sungrow/telemetry"
)

// shortLoad is a few seconds of the loadtest at a pace a 2-core CI machine under -race
// keeps up with: every device posts 5 samples every 250 ms.
func shortLoad(base string, devices []loadtest.Device, d time.Duration) loadtest.Config {
	return loadtest.Config{
		BaseURL: base, Devices: devices, Duration: d,
		IngestEvery: 250 * time.Millisecond, BatchSize: 5,
		RealtimeRate: 150, SeriesRate: 5, Readers: 16,
		Drain: 20 * time.Second, RetryBase: 50 * time.Millisecond, RetryMax: time.Second,
		FaultGrace: 2 * time.Second, Seed: 1,
	}
}

func startLoad(t *testing.T, cfg loadtest.Config) (*loadtest.Runner, <-chan loadtest.Report) {
	t.Helper()
	r, err := loadtest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan loadtest.Report, 1)
	go func() { done <- r.Run(context.Background()) }()
	return r, done
}

// checkStored fails the test unless every acknowledged sample is stored exactly once.
func checkStored(t *testing.T, pool *pgxpool.Pool, rep loadtest.Report) {
	t.Helper()
	v, err := loadtest.Verify(context.Background(), pool, rep.Acked)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(v)
	if !v.OK() || v.Acked == 0 {
		t.Fatalf("want every acknowledged sample stored exactly once: %s", v)
	}
}

func no5xx(t *testing.T, rep loadtest.Report, endpoint string) {
	t.Helper()
	for status, n := range rep.Endpoint(endpoint).Statuses {
		if status >= 500 {
			t.Errorf("%s answered %d × %d", endpoint, n, status)
		}
	}
}

func TestRedisStoppedDuringLoad(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	rs := testenv.StartRedis(t)
	devices := loadtest.GeneratedDevices(8, "redisfault")
	srv := testserve.StartServe(t, map[string]string{
		"DATABASE_URL": d.URL, "REDIS_URL": rs.URL, "DEVICE_TOKENS": loadtest.DeviceTokens(devices),
	})
	r, done := startLoad(t, shortLoad(srv.Base, devices, 6*time.Second))
	ok200 := func() float64 {
		return metric(t, srv.Base, "sungrow_http_requests_total", `route="GET /v1/realtime"`, `status="200"`)
	}

	testenv.Await(t, "realtime answers cached in Redis", 20*time.Second, func() bool { return realtimeKeys(t, rs) > 0 })
	end := r.Fault("redis stopped", false)
	rs.Stop()
	before := ok200()
	testenv.Await(t, "realtime answers while Redis is down", 20*time.Second, func() bool { return ok200() >= before+100 })
	rs.Start(t) // empty: whatever it holds next was cached after its return
	end()
	// A read of its own, in case the load is over by now on a slow machine.
	testenv.Await(t, "caching to resume in the restarted Redis", 20*time.Second, func() bool {
		status, _ := send(t, http.MethodGet, srv.Base+"/v1/realtime?device_id="+devices[0].ID, "Bearer "+devices[0].Token, nil)
		is.Equal(status, http.StatusOK)
		return realtimeKeys(t, rs) > 0
	})

	rep := <-done
	t.Log("\n" + rep.String())
	is.Equal(rep.Unexpected(), int64(0)) // no 5xx and no lost batch, Redis or not
	no5xx(t, rep, "realtime")
	no5xx(t, rep, "ingest")
	checkStored(t, d.Pool, rep)
}

func TestPostgresRestartedDuringLoad(t *testing.T) {
	is := is.New(t)
	pg := testenv.StartPostgres(t)
	env := map[string]string{"DATABASE_URL": pg.URL("sungrow")}
	runCmd(t, env, "migrate", "up")
	devices := loadtest.GeneratedDevices(8, "pgfault")
	env["DEVICE_TOKENS"] = loadtest.DeviceTokens(devices)
	srv := testserve.StartServe(t, env)
	ingest := func(status string) float64 {
		return metric(t, srv.Base, "sungrow_http_requests_total", `route="POST /v1/ingest"`, `status="`+status+`"`)
	}
	// The load lasts until recovery has been seen (Stop), however slow the machine.
	r, done := startLoad(t, shortLoad(srv.Base, devices, 2*time.Minute))

	testenv.Await(t, "ingest under way", 20*time.Second, func() bool { return ingest("200") >= 20 })
	end := r.Fault("postgres restart", true)
	pg.Crash(t)
	testenv.Await(t, "ingest to answer 503 while PostgreSQL is down", 20*time.Second, func() bool { return ingest("503") >= 10 })
	pg.Start(t)
	end()
	ok := ingest("200")
	testenv.Await(t, "ingest to succeed again without restarting serve", 60*time.Second, func() bool { return ingest("200") >= ok+20 })
	r.Stop()

	rep := <-done
	t.Log("\n" + rep.String())
	is.Equal(rep.Unexpected(), int64(0))                             // no 5xx but the expected ones, every batch acknowledged
	is.True(rep.Endpoint("ingest").Expected["postgres restart"] > 0) // the fault was felt
	is.True(rep.Retries > 0)                                         // and ridden out by retrying
	for _, l := range strings.Split(srv.Logs.String(), "\n") {
		if strings.Contains(l, "request failed") && !strings.Contains(l, `"status":503`) {
			t.Errorf("not a 503: %s", l) // a database that is away is 503, never 500
		}
	}

	pool, err := pgxpool.New(context.Background(), pg.URL("sungrow"))
	is.NoErr(err)
	defer pool.Close()
	checkStored(t, pool, rep)
	res, err := http.Get(srv.Base + "/ready")
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)
}

// batchBody is a valid ingest body of n samples of device from start, 5 s apart.
func batchBody(t *testing.T, device string, start time.Time, n int) []byte {
	t.Helper()
	samples := make([]telemetry.Sample, n)
	for i := range samples {
		samples[i] = telemetry.Sample{DeviceID: device, TS: start.Add(time.Duration(i) * 5 * time.Second),
			PVPowerW: float64(i), BatterySoCPct: 50, LoadPowerW: 300, SampleCount: 1}
	}
	b, err := json.Marshal(map[string]any{"samples": samples})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countBetween(t *testing.T, pool *pgxpool.Pool, device string, from, to time.Time) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM sungrow_samples WHERE device_id = $1 AND ts >= $2 AND ts < $3`, device, from, to).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClientsDisconnectMidRequest(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	dev := loadtest.GeneratedDevices(1, "disconnect")[0]
	srv := testserve.StartServe(t, map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": loadtest.DeviceTokens([]loadtest.Device{dev})})
	addr := strings.TrimPrefix(srv.Base, "http://")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const size = 200
	span := size * 5 * time.Second

	// Half a body, then the client hangs up.
	for i := range 10 {
		body := batchBody(t, dev.ID, base.Add(time.Duration(i)*span), size)
		conn, err := net.Dial("tcp", addr)
		is.NoErr(err)
		fmt.Fprintf(conn, "POST /v1/ingest HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			addr, dev.Token, len(body))
		_, err = conn.Write(body[:len(body)/2])
		is.NoErr(err)
		conn.Close()
	}
	// Whole requests whose client gives up at a random moment, before, during or
	// after the insert.
	rng := rand.New(rand.NewPCG(7, 7))
	var cancelled, answered atomic.Int64
	var wg sync.WaitGroup
	send := func(i int, timeout time.Duration) {
		body := batchBody(t, dev.ID, base.Add(time.Duration(i)*span), size)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.Base+"/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dev.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			cancelled.Add(1)
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		answered.Add(1)
	}
	// Cut at random moments up to four times what a whole request takes here.
	began := time.Now()
	send(60, time.Minute)
	took := time.Since(began)
	timeouts := make([]time.Duration, 50)
	for i := range timeouts {
		timeouts[i] = time.Duration(rng.Int64N(int64(4 * took)))
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 10 + w; i < 50; i += 4 {
				send(i, timeouts[i])
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests cut by their client, %d answered (a whole one took %s)", cancelled.Load(), answered.Load()-1, took)
	// Every handler has finished once only the scrape itself is in flight.
	testenv.Await(t, "abandoned requests to finish", 20*time.Second, func() bool {
		return metric(t, srv.Base, "sungrow_http_requests_in_flight") == 1
	})

	for i := range 50 {
		from := base.Add(time.Duration(i) * span)
		n := countBetween(t, d.Pool, dev.ID, from, from.Add(span))
		if i < 10 && n != 0 {
			t.Errorf("half-sent batch %d: %d rows stored, want none", i, n)
		}
		if n != 0 && n != size {
			t.Errorf("batch %d: %d of %d rows stored: half a batch", i, n, size)
		}
	}
	// And the server keeps serving.
	body := batchBody(t, dev.ID, base.Add(100*span), 1)
	req, _ := http.NewRequest(http.MethodPost, srv.Base+"/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dev.Token)
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)
}

// trickle sends head at once, then rest a few bytes every 100 ms, and reports whether
// the server closed the connection before rest was all sent, and what it answered.
func trickle(t *testing.T, addr, head, rest string) (dropped bool, answer string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // ends when the server closes the connection
		closed <- string(b)
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(rest); i += 4 {
		select {
		case answer = <-closed:
			return true, answer
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := io.WriteString(conn, rest[i:min(i+4, len(rest))]); err != nil {
			return true, <-closed
		}
	}
	return false, ""
}

func TestSlowClientsAreDroppedWhileOthersAreServed(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	dev := loadtest.GeneratedDevices(1, "slow")[0]
	srv := testserve.StartServe(t, map[string]string{
		"DATABASE_URL": d.URL, "DEVICE_TOKENS": loadtest.DeviceTokens([]loadtest.Device{dev}),
		"READ_HEADER_TIMEOUT_S": "0.5", "READ_TIMEOUT_S": "1",
	})
	addr := strings.TrimPrefix(srv.Base, "http://")
	realtime := func() (int, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.Base+"/v1/realtime?device_id="+dev.ID, nil)
		req.Header.Set("Authorization", "Bearer "+dev.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := batchBody(t, dev.ID, start, 1)
	req, _ := http.NewRequest(http.MethodPost, srv.Base+"/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dev.Token)
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()

	// Well-behaved clients keep reading while the slow ones hang on.
	stop := make(chan struct{})
	var served, failed atomic.Int64
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if status, err := realtime(); err == nil && status == http.StatusOK {
					served.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}

	var slow sync.WaitGroup
	var headerDropped, bodyDropped bool
	slow.Add(2)
	go func() {
		defer slow.Done()
		headers := strings.Repeat("X-Slow: 1\r\n", 50) + "\r\n" // 20 s at this pace
		headerDropped, _ = trickle(t, addr, "GET /v1/realtime?device_id="+dev.ID+" HTTP/1.1\r\nHost: x\r\n", headers)
	}()
	slowBody := batchBody(t, dev.ID, start.Add(time.Hour), 20)
	go func() {
		defer slow.Done()
		head := fmt.Sprintf("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			dev.Token, len(slowBody))
		bodyDropped, _ = trickle(t, addr, head, string(slowBody[:min(len(slowBody), 800)])) // 20 s at this pace
	}()
	slow.Wait()
	close(stop)
	readers.Wait()

	is.True(headerDropped)                                                                     // the server hung up on the slow headers
	is.True(bodyDropped)                                                                       // and on the slow body
	is.True(served.Load() > 0)                                                                 // while serving everyone else
	is.Equal(failed.Load(), int64(0))                                                          // without a failure
	is.Equal(countBetween(t, d.Pool, dev.ID, start.Add(time.Hour), start.Add(2*time.Hour)), 0) // nothing of the slow body stored
}

// TestTableTokensOutlivePostgresOutage: the tokens of the devices table are held in
// memory, so a database that is away refuses nobody (the reads that need it answer
// 503, not 401), and changes made after it is back reach serve again without a restart.
func TestTableTokensOutlivePostgresOutage(t *testing.T) {
	is := is.New(t)
	pg := testenv.StartPostgres(t)
	env := map[string]string{"DATABASE_URL": pg.URL("sungrow")}
	runCmd(t, env, "migrate", "up")
	token := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if tok, ok := strings.CutPrefix(l, "token 1: "); ok {
				return tok
			}
		}
		t.Fatalf("no token in %q", out)
		return ""
	}
	tok := token(runCmd(t, env, "device", "add", "inverter-a"))
	srv := testserve.StartServe(t, env)
	me := func(tok string) int {
		status, _ := send(t, http.MethodGet, srv.Base+"/v1/me", "Bearer "+tok, nil)
		return status
	}
	is.Equal(me(tok), http.StatusOK)

	pg.Crash(t)
	// Let a few polls fail first.
	testenv.Await(t, "serve to notice the outage", 20*time.Second, func() bool {
		return strings.Contains(srv.Logs.String(), "device tokens: the table failed")
	})
	is.Equal(me(tok), http.StatusOK) // still admitted
	status, _ := send(t, http.MethodGet, srv.Base+"/v1/realtime?device_id=inverter-a", "Bearer "+tok, nil)
	is.Equal(status, http.StatusServiceUnavailable) // what needs the database says so

	pg.Start(t)
	runCmd(t, env, "device", "remove", "inverter-a")
	testenv.Await(t, "the removal to reach serve after the outage", 20*time.Second, func() bool {
		return me(tok) == http.StatusUnauthorized
	})
	// The registry says so after the reload (and the flush) that let the removal in.
	testenv.Await(t, "serve to say the table answers again", 20*time.Second, func() bool {
		return strings.Contains(srv.Logs.String(), "device tokens: the table answers again")
	})
	is.True(!strings.Contains(srv.Logs.String(), tok))
}
