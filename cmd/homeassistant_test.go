package cmd_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// TestServeWithMQTT: serve starts and ingests whatever the broker does, says in one
// clear log line why it cannot publish, and with a working broker announces the device.
func TestServeWithMQTT(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	tests := []struct {
		name, url, log string
	}{
		{"connected", broker.URL(), `"msg":"mqtt: connected"`},
		{"wrong password", fmt.Sprintf("mqtt://%s:wrong-pass@127.0.0.1:%s", broker.User, broker.Port),
			"the broker refused sungrow's user name or password (check MQTT_URL)"},
		{"no broker", "mqtt://u:wrong-pass@" + testenv.FreeAddr(t), "mqtt: cannot connect to the broker; retrying"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := testenv.New(t, testenv.Postgres)
			d.Pool.Close()
			rec := testenv.RecordMQTT(t, broker)
			mark := rec.Count()
			addr := testenv.FreeAddr(t)
			logs := &testenv.LogBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			env := map[string]string{
				"DATABASE_URL":        d.URL,
				"DEVICE_TOKENS":       "tok:inverter-" + tt.name[:2],
				"LISTEN_ADDR":         addr,
				"MQTT_URL":            tt.url,
				"MQTT_MIN_INTERVAL_S": "0.2",
			}
			go func() {
				done <- cmd.Run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &strings.Builder{}, logs)
			}()
			testenv.WaitHealthy(t, "http://"+addr, done)

			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/ingest", strings.NewReader(fmt.Sprintf(
				`{"samples":[{"device_id":"inverter-%s","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`, tt.name[:2])))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, http.StatusOK) // the broker's trouble is never ingest's

			testenv.Await(t, "the log line", 30*time.Second, func() bool { return strings.Contains(logs.String(), tt.log) })
			if tt.name == "connected" {
				testenv.Await(t, "the device's state", 30*time.Second, func() bool {
					for _, m := range rec.Since(mark) {
						if m.Topic == "sungrow/inverter-co/state" {
							return true
						}
					}
					return false
				})
			}
			if tt.name == "connected" {
				// Home Assistant shows the version `sungrow version` prints, commit and all.
				testenv.Await(t, "a discovery config naming the commit", 30*time.Second, func() bool {
					for _, m := range rec.Since(mark) {
						if strings.HasPrefix(m.Topic, "homeassistant/") && strings.Contains(m.Payload, `"sw_version":"`+cmd.Version+` (commit `) {
							return true
						}
					}
					return false
				})
			}
			cancel()
			select {
			case err := <-done:
				is.NoErr(err)
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop")
			}
			is.True(!strings.Contains(logs.String(), "wrong-pass")) // never the password
			if tt.name == "connected" {
				// A clean shutdown says offline itself (the broker acked it; it may
				// still be on its way to the recorder).
				testenv.Await(t, "offline", 10*time.Second, func() bool {
					for _, m := range rec.Since(mark) {
						if m.Topic == "sungrow/status" && m.Payload == "offline" {
							return true
						}
					}
					return false
				})
			}
		})
	}
}
