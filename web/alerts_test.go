package web_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/alerts"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

// TestDashboardAlertBanner: a firing alert of the device shows as a banner with its
// summary; none shows while nothing fires.
func TestDashboardAlertBanner(t *testing.T) {
	is := is.New(t)
	chromium := requireChromium(t)
	artifacts := artifactDir(t)

	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	const device = "inverter-alerts"
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC) // pinned: nothing here depends on the date
	clock := func() time.Time { return now }
	server := httptest.NewServer(dashboardServer(t, d, store, device, time.UTC, clock))
	t.Cleanup(server.Close)
	hook := httptest.NewServer(nil) // answers 404: the banner does not depend on delivery
	t.Cleanup(hook.Close)
	above := 45.0
	_, err := alerts.NewStore(d.Pool, clock).Add(context.Background(), alerts.NewRule{DeviceID: device,
		Kind: alerts.BatteryTemp, Above: &above, Webhooks: []string{hook.URL}})
	is.NoErr(err)
	temp := 50.0
	ingest(t, server.URL, map[string]any{"device_id": device, "ts": now.Format(time.RFC3339), "pv_power_w": 100.0,
		"battery_power_w": 0.0, "battery_soc_pct": 50.0, "battery_temp_c": temp, "load_power_w": 300.0, "export_power_w": -200.0})

	ctx, cancel := newBrowser(t, chromium)
	defer cancel()
	console := collectConsole(t, ctx)
	run, eval := steps(t, ctx, artifacts, "alerts", console)
	run("sign in", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(server.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)), chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#dash`)))
	is.Equal(eval(`String(document.getElementById('alerts').hidden)`), "true") // not checked yet: nothing fires

	_, err = alerts.NewService(alerts.Options{Conn: d.Pool, Now: clock}).Check(context.Background())
	is.NoErr(err)
	run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#alerts`)))
	text := eval(`document.getElementById('alerts-text').textContent`)
	is.True(strings.HasPrefix(text, "Alert: "+device+": battery at 50 °C, above 45 °C"))
	shot(t, ctx, artifacts, "alert-banner-1280")
}
