package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/alerts"
	"github.com/sungrow/sungrow/internal/testenv"
)

// webhook records the notifications it accepts, checking each signature.
type webhook struct {
	mu     sync.Mutex
	states []string
	bad    int
}

func (h *webhook) handler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n alerts.Notification
		_ = json.Unmarshal(body, &n)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !alerts.Verify(secret, body, r.Header.Get(alerts.SignatureHeader)) {
			h.bad++
		}
		h.states = append(h.states, n.State)
	})
}

func (h *webhook) got() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.states, ",")
}

func ingestNow(t *testing.T, base, token, device string) {
	t.Helper()
	body := fmt.Sprintf(`{"samples":[{"device_id":%q,"ts":%q,"pv_power_w":100,"battery_power_w":0,
		"battery_soc_pct":50,"battery_temp_c":25,"load_power_w":100,"export_power_w":0}]}`,
		device, time.Now().UTC().Format(time.RFC3339Nano))
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", res.StatusCode)
	}
}

func getAlerts(t *testing.T, base, token, device string) (firing bool, state string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/alerts?device_id="+device, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Firing bool            `json:"firing"`
		Alerts []alerts.Status `json:"alerts"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil || len(body.Alerts) != 1 ||
		len(body.Alerts[0].Devices) != 1 {
		return false, fmt.Sprintf("status %d", res.StatusCode)
	}
	return body.Firing, body.Alerts[0].Devices[0].State
}

// End to end through a real serve: a device that stops posting fires its offline
// rule's webhook once within 25 s, signed, and resolves within 15 s of its next
// sample; /v1/alerts, `alert list --json` and /metrics show it, `alert test` prints
// the receiver's answer, and no log line holds the webhook URL or the secret.
func TestAlertOfflineEndToEnd(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	const secret, token, device = "whsec-e2e-6f1c", "tok-alerts-e2e", "inv-e2e"
	hook := &webhook{}
	recv := httptest.NewServer(hook.handler(secret))
	defer recv.Close()
	hookURL := recv.URL + "/hook-path-9b7e"
	env := map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": token + ":" + device, "ALERT_CHECK_S": "1", "LOG_LEVEL": "debug"}
	c := &cli{t: t, env: env}

	// Refused input writes nothing, and the refusal names the flag, not the URL.
	for _, args := range [][]string{
		{"--device", device, "--rule", "offline", "--after", "5s", "--webhook", hookURL},
		{"--device", device, "--rule", "offline", "--webhook", "ftp://x/hook-path-9b7e"},
		{"--all", "--device", device, "--rule", "clock", "--webhook", hookURL},
		{"--device", device, "--rule", "battery_temp", "--webhook", hookURL},
	} {
		_, errOut, err := run(context.Background(), env, append([]string{"alert", "add"}, args...)...)
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "--"))
		is.True(!strings.Contains(err.Error()+errOut, "hook-path-9b7e"))
	}
	is.Equal(strings.TrimSpace(c.run("alert", "list", "--json")), "[]")

	s := startServe(t, env)
	ingestNow(t, s.Base, token, device)
	out := c.run("alert", "add", "--device", device, "--rule", "offline", "--after", "10s", "--webhook", hookURL, "--secret", secret)
	is.True(strings.HasPrefix(out, "added alert 1: offline on "+device))

	began := time.Now()
	testenv.Await(t, "firing", 25*time.Second, func() bool { return hook.got() == "firing" })
	t.Logf("firing after %s", time.Since(began).Round(100*time.Millisecond))
	firing, state := getAlerts(t, s.Base, token, device)
	is.True(firing)
	is.Equal(state, "firing")
	var list []alerts.Status
	is.NoErr(json.Unmarshal([]byte(c.run("alert", "list", "--json")), &list))
	is.Equal(list[0].Devices[0].State, "firing")
	is.True(!strings.Contains(c.run("alert", "list", "--json"), "hook-path-9b7e"))
	metrics := scrape(t, strings.TrimPrefix(s.Base, "http://"))
	is.True(strings.Contains(metrics, `sungrow_alerts_firing{rule="offline"} 1`))
	is.True(strings.Contains(metrics, `sungrow_alert_deliveries_total{result="delivered"} 1`))

	ingestNow(t, s.Base, token, device)
	began = time.Now()
	testenv.Await(t, "resolved", 15*time.Second, func() bool { return hook.got() == "firing,resolved" })
	t.Logf("resolved %s after the sample", time.Since(began).Round(100*time.Millisecond))
	_, state = getAlerts(t, s.Base, token, device)
	is.Equal(state, "ok")
	is.Equal(hook.bad, 0) // every signature verified

	out = c.run("alert", "test", "1")
	is.Equal(out, "webhook 1 ("+alerts.RedactURL(hookURL)+"): 200 OK\n")
	is.Equal(hook.got(), "firing,resolved,test")
	c.run("alert", "remove", "1")
	_, _, err := run(context.Background(), env, "alert", "remove", "1")
	is.True(err != nil)

	var all bytes.Buffer
	all.WriteString(s.Logs.String())
	all.WriteString(c.stderr.String())
	is.True(strings.Contains(all.String(), `"alert firing"`))
	is.True(!strings.Contains(all.String(), "hook-path-9b7e"))
	is.True(!strings.Contains(all.String(), secret))
}
