package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

// totalsFields are the totals the page shows, by the field of /v1/series they show.
var totalsFields = []string{"pv_kwh", "load_kwh", "grid_import_kwh", "grid_export_kwh",
	"battery_charge_kwh", "battery_discharge_kwh", "self_consumption_pct", "autarky_pct"}

// fetchTotals is the totals of one frame of /v1/series.
func fetchTotals(t *testing.T, base, device, frame, date string) map[string]any {
	t.Helper()
	var out struct {
		Totals map[string]any `json:"totals"`
	}
	u := base + "/v1/series?device_id=" + device + "&frame=" + frame
	if date != "" {
		u += "&date=" + date
	}
	get(t, u, &out)
	if out.Totals == nil {
		t.Fatalf("%s: no totals", u)
	}
	return out.Totals
}

// totalsOnPage reads the totals tiles: each field's exact value (nil: shown as "–") and
// the text a person reads.
const totalsOnPage = `JSON.stringify(Object.fromEntries([...document.querySelectorAll('#totals .total[data-field]')]
	.map((e) => [e.dataset.field, e.dataset.value === undefined ? null : e.dataset.value])))`

const totalsText = `JSON.stringify(Object.fromEntries([...document.querySelectorAll('#totals .total[data-field]')]
	.map((e) => [e.dataset.field, e.querySelector('.v').textContent])))`

// checkTotalsShown compares the page's totals tiles with /v1/series' totals: the same
// numbers, not figures the page worked out itself.
func checkTotalsShown(t *testing.T, frame string, eval func(string) string, want map[string]any) map[string]float64 {
	t.Helper()
	var shown map[string]*string
	if err := json.Unmarshal([]byte(eval(totalsOnPage)), &shown); err != nil {
		t.Fatal(err)
	}
	var texts map[string]string
	if err := json.Unmarshal([]byte(eval(totalsText)), &texts); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range totalsFields {
		s, ok := shown[f]
		switch w := want[f]; {
		case !ok:
			t.Errorf("%s: the page shows no %s", frame, f)
		case w == nil && s != nil:
			t.Errorf("%s: the page shows %s = %s, /v1/series says null", frame, f, *s)
		case w != nil && s == nil:
			t.Errorf("%s: the page shows no %s, /v1/series says %v", frame, f, w)
		case w != nil:
			v, err := strconv.ParseFloat(*s, 64)
			if err != nil || v != w.(float64) {
				t.Errorf("%s: the page shows %s = %s, /v1/series says %v", frame, f, *s, w)
			}
			got[f] = v
			text := kWh(v)
			if strings.HasSuffix(f, "_pct") {
				text = fmt.Sprintf("%d %%", int(math.Floor(v+0.5)))
			}
			if texts[f] != text {
				t.Errorf("%s: the %s tile reads %q, want %q", frame, f, texts[f], text)
			}
		}
	}
	return got
}

// TestDashboardEnergyOfSimulatedHouse: ten days of the simulator's house at 5 s. Over
// the long frames the page shows /v1/series' totals, and a battery that gave out no
// more than went in; the CSV button downloads the frame's CSV, fetched with the token.
func TestDashboardEnergyOfSimulatedHouse(t *testing.T) {
	is := is.New(t)
	chromium := requireChromium(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	const device = "inverter-sim"
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	g, err := simulate.New(simulate.Config{DeviceID: device, Start: now.AddDate(0, 0, -10), End: now.Add(-time.Hour),
		Interval: 5 * time.Second, Seed: 9, Latitude: simulate.DefaultLatitude, Location: time.UTC,
		PVPeakW: simulate.DefaultPVPeakW, BatteryKWh: simulate.DefaultBatteryKWh, BatteryMaxW: simulate.DefaultBatteryMaxW})
	is.NoErr(err)
	_, err = simulate.Run(context.Background(), g, store, 5000, nil)
	is.NoErr(err)

	srv := httptest.NewServer(dashboardServer(t, d, store, device, time.UTC, func() time.Time { return now }))
	t.Cleanup(srv.Close)
	root, cancel := newBrowser(t, chromium)
	defer cancel()
	ctx, closeTab := chromedp.NewContext(root)
	defer closeTab()
	console := collectConsole(t, ctx)
	downloads := t.TempDir()
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
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
		step(name, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond),
				chromedp.WithPollingTimeout(45*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		})
	}

	step("open the page", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	step("sign in", chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#dash`)))
	for _, frame := range []string{"month", "all"} {
		step("show "+frame, chromedp.Click(chromedp.CSS(`.tabs button[data-frame="`+frame+`"]`)))
		waitFor(frame+" chart", `(() => { const c = document.getElementById('chart');
			return c.dataset.state === 'drawn' && c.dataset.frame === '`+frame+`'; })()`)
		shown := checkTotalsShown(t, frame, eval, fetchTotals(t, srv.URL, device, frame, ""))
		if shown["battery_charge_kwh"] < shown["battery_discharge_kwh"] || shown["battery_charge_kwh"] < 1 {
			t.Errorf("%s: battery charge %v kWh, discharge %v kWh: no battery gives out more than went in",
				frame, shown["battery_charge_kwh"], shown["battery_discharge_kwh"])
		}
	}

	// The CSV of the frame on screen (all), as a file, byte for byte what the API gives.
	dctx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	progress := chromedp.Events(dctx, browser.DownloadProgress) // the tab's, which asks for them
	_, err = chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true)})
	is.NoErr(err)
	step("download the CSV", chromedp.Click(chromedp.CSS(`#csv`)))
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the CSV download: %v; console: %s", err, console())
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	file, err := os.ReadFile(filepath.Join(downloads, guid))
	is.NoErr(err)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/series?device_id="+device+"&frame=all&format=csv", nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	want, err := io.ReadAll(res.Body)
	res.Body.Close()
	is.NoErr(err)
	is.Equal(res.Header.Get("Content-Disposition"), `attachment; filename=sungrow-inverter-sim-all-2026-06-15.csv`)
	is.True(strings.HasPrefix(string(want), "bucket,avg_pv_power_w,"))
	is.Equal(string(file), string(want)) // the page saved exactly the API's CSV
	if msgs := console(); msgs != "" {
		t.Errorf("console errors (CSP violations show here too):\n%s", msgs)
	}
}

// kWh formats energy the way the page does.
func kWh(v float64) string {
	switch {
	case math.Abs(v) >= 10000:
		return fmt.Sprintf("%.1f MWh", v/1000)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%d kWh", int(math.Floor(v+0.5)))
	}
	return fmt.Sprintf("%.1f kWh", v)
}
