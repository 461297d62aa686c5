package web_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

// TestDashboardQuarantineNotice: readings the server set aside show as a notice worded
// from their reasons, and the expander lists them.
func TestDashboardQuarantineNotice(t *testing.T) {
	is := is.New(t)
	chromium := requireChromium(t)
	artifacts := artifactDir(t)

	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	const device = "inverter-quarantine"
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC) // pinned: nothing here depends on the date
	server := httptest.NewServer(dashboardServer(t, d, store, device, time.UTC, func() time.Time { return now }))
	t.Cleanup(server.Close)
	srv := server.URL
	sample := func(ts string, soc float64) map[string]any {
		return map[string]any{"device_id": device, "ts": ts, "pv_power_w": 100.0, "battery_power_w": 0.0,
			"battery_soc_pct": soc, "load_power_w": 300.0, "export_power_w": -200.0}
	}
	// A live reading, so the page has one; then a reset clock with a failed SoC read, and
	// a plausible time with a failed SoC read (neither depends on today's date).
	ingest(t, srv, sample(now.Format(time.RFC3339), 50))
	ingest(t, srv, sample("1970-01-01T00:00:10Z", 255))
	ingest(t, srv, sample("2020-06-01T12:00:00Z", 255))

	ctx, cancel := newBrowser(t, chromium)
	defer cancel()
	console := collectConsole(t, ctx)
	run, eval := steps(t, ctx, artifacts, "quarantine", console)

	run("sign in", chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(srv+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)), chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#quarantine`)))
	text := eval(`document.getElementById('quarantine-text').textContent`)
	is.True(strings.HasPrefix(text, "2 readings were set aside since ")) // two timestamps
	is.True(strings.Contains(text, "the inverter's clock was wrong"))
	is.True(strings.Contains(text, "state of charge read outside 0–100 %"))
	is.Equal(eval(`String(document.getElementById('quarantine-more').open)`), "false") // folded

	run("unfold", chromedp.Click(chromedp.CSS(`#quarantine-more summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#quarantine-rows tr`)))
	is.Equal(eval(`String(document.querySelectorAll('#quarantine-rows tr').length)`), "3") // one per field
	rows := eval(`document.getElementById('quarantine-rows').textContent`)
	is.True(strings.Contains(rows, "1970-01-01T00:00:10Z"))
	is.True(strings.Contains(rows, "check the inverter's clock"))
	is.True(strings.Contains(rows, "must be between 0 and 100"))
	shot(t, ctx, artifacts, "quarantine-1920-light")

	run("sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	is.Equal(eval(`String(document.getElementById('quarantine').hidden)`), "true")
	if msgs := console(); msgs != "" {
		t.Errorf("console errors:\n%s", msgs)
	}
}
