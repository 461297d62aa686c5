package cmd_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

func TestServeEndsOpenStreamsAtOnceOnShutdown(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, map[string]string{
			"DATABASE_URL": d.URL, "DEVICE_TOKENS": "tok:inverter-01", "LISTEN_ADDR": addr,
			"SHUTDOWN_TIMEOUT_S": "60", // what shutdown would wait for streams that never end
		}, "serve")
		done <- err
	}()
	testenv.WaitHealthy(t, base, nil)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", strings.NewReader(
		`{"samples":[{"device_id":"inverter-01","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)

	streams := make([]*testenv.SSE, 100)
	for i := range streams {
		streams[i] = testenv.OpenStream(t, base, "tok", "inverter-01", "")
		is.Equal(streams[i].Status, http.StatusOK)
	}
	for _, s := range streams {
		is.Equal(s.NextSample(t, 10*time.Second).ID, "2026-01-01T00:00:00Z")
	}
	metrics := scrape(t, addr)
	is.True(strings.Contains(metrics, "sungrow_stream_open 100"))
	is.True(strings.Contains(metrics, "sungrow_stream_events_sent_total 100"))

	start := time.Now()
	cancel() // what SIGTERM does through main's signal.NotifyContext
	select {
	case err := <-done:
		is.NoErr(err)
		t.Logf("serve exited %s after shutdown began, with 100 streams open", time.Since(start))
	case <-time.After(30 * time.Second): // half of SHUTDOWN_TIMEOUT_S: the streams held it up
		t.Fatal("serve waited for its open streams")
	}
	for _, s := range streams {
		is.True(s.Ended(time.Second)) // every stream was ended, not left hanging
	}
}

// On the single-connection TimescaleDB test server a held LISTEN would leave no
// connection for anything else: serve polls there, and streams work on both.
func TestServeStreamsOnEitherBackend(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		d.Pool.Close() // serve opens its own: TimescaleDB serves one connection at a time
		addr := testenv.FreeAddr(t)
		base := "http://" + addr
		logs := &testenv.LogBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- cmd.Run(ctx, []string{"serve"}, func(k string) string {
				return map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": "tok:inverter-01", "LISTEN_ADDR": addr}[k]
			}, io.Discard, logs)
		}()
		t.Cleanup(func() {
			cancel()
			is.NoErr(<-done)
		})
		testenv.WaitHealthy(t, base, done)
		want := "LISTEN/NOTIFY"
		if d.Timescale {
			want = "polling"
		}
		is.True(strings.Contains(logs.String(), "live stream: "+want))

		s := testenv.OpenStream(t, base, "tok", "inverter-01", "")
		is.Equal(s.Status, http.StatusOK)
		for _, ts := range []string{"2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"} {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", strings.NewReader(
				`{"samples":[{"device_id":"inverter-01","ts":"`+ts+`","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, http.StatusOK)
			is.Equal(s.NextSample(t, 10*time.Second).ID, ts)
		}
		s.Close()
		is.True(!strings.Contains(logs.String(), `"msg":"stream: `)) // no stream warning: NOTIFY works on both
	})
}
