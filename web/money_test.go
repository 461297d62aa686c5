package web_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

// TestDashboardShowsMoney checks the money tiles beside the kWh: hidden for a device
// without prices, then each tile carrying exactly the totals of /v1/series.
func TestDashboardShowsMoney(t *testing.T) {
	is := is.New(t)
	const device = "inverter-money"
	chromium := requireChromium(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	// A fixed history (frame=all shows it whatever today is): ten days of hourly samples.
	var samples []telemetry.Sample
	for ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)); ts = ts.Add(time.Hour) {
		h := float64(ts.Hour())
		samples = append(samples, telemetry.Sample{DeviceID: device, TS: ts, PVPowerW: 200 * max(0, 6-math.Abs(h-12)),
			BatteryPowerW: 100, BatterySoCPct: 50, LoadPowerW: 600, ExportPowerW: 200*max(0, 6-math.Abs(h-12)) - 700, SampleCount: 720})
	}
	_, err := store.Insert(context.Background(), device, samples)
	is.NoErr(err)
	// The page's clock does not matter: frame=all shows the history whatever the date.
	now := func() time.Time { return time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC) }
	srv := httptest.NewServer(dashboardServer(t, d, store, device, time.UTC, now))
	t.Cleanup(srv.Close)
	ctx, cancel := newBrowser(t, chromium)
	defer cancel()
	console := collectConsole(t, ctx)
	run := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v\nconsole: %s", name, err, console())
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	waitFor := func(name, js string) {
		t.Helper()
		run(name, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond),
				chromedp.WithPollingTimeout(45*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		})
	}
	showAll := func(frameBefore string) {
		t.Helper()
		run("show "+frameBefore, chromedp.Click(chromedp.CSS(`.tabs button[data-frame="`+frameBefore+`"]`)))
		run("show all", chromedp.Click(chromedp.CSS(`.tabs button[data-frame="all"]`)))
		waitFor("all drawn", `(() => { const c = document.getElementById('chart');
			return c.dataset.state === 'drawn' && c.dataset.frame === 'all'; })()`)
	}

	run("sign in", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)), chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#dash`)))
	showAll("day")
	is.Equal(eval(`String(document.getElementById('money').hidden)`), "true") // no prices yet

	_, _, err = tariff.NewStore(d.Pool).Set(context.Background(), tariff.Tariff{DeviceID: tariff.AllDevices, Kind: tariff.Fixed,
		ValidFrom: time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), Import: "0.31", Export: "0.07", Currency: "EUR"})
	is.NoErr(err)
	showAll("year")
	waitFor("money shown", `document.getElementById('money').hidden === false`)
	var body struct {
		Totals   map[string]*float64 `json:"totals"`
		Unpriced int64               `json:"unpriced_hours"`
	}
	get(t, srv.URL+"/v1/series?device_id="+device+"&frame=all", &body)
	for _, field := range []string{"grid_import_cost", "grid_export_revenue", "savings", "net_cost"} {
		got := eval(fmt.Sprintf(`document.querySelector('#money [data-field=%q]').dataset.value`, field))
		v, err := strconv.ParseFloat(got, 64)
		is.NoErr(err)
		is.Equal(v, *body.Totals[field]) // the tile carries the server's total
	}
	is.Equal(body.Unpriced, int64(4*24)) // 1–4 March have no price, and the page says so
	shot(t, ctx, artifactDir(t), "money-all-1280-light")
	is.Equal(eval(fmt.Sprintf(`String(document.getElementById('money').textContent.includes('Hours without a price%d'))`, body.Unpriced)), "true")
}
