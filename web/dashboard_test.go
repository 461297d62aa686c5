package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

const (
	token = "dashboard-token"
	// chromiumPath is Debian's chromium package; scripts/services installs it.
	chromiumPath = "/usr/bin/chromium"
	// tourAt is the instant whose run also takes the screenshots and checks the wrong
	// token, the phone width and the dark theme: the rest do not depend on the date.
	tourAt = "Europe/Brussels/mid-june-noon"
)

// TestDashboardInBrowser drives the real page in headless Chromium against a server on
// a seeded database, at every pinned instant of testenv.Instants (in UTC and
// Europe/Brussels): the server's clock, its Date header, the browser's clock and its
// zone all say that instant. At each: sign in, the live numbers of /v1/realtime (stale,
// then fresh), a chart for every frame with the buckets and totals of /v1/series,
// previous/next, sign out. One Chromium serves every instant, a tab each.
func TestDashboardInBrowser(t *testing.T) {
	chromium := requireChromium(t)
	artifacts := artifactDir(t)

	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	instants := testenv.Instants(t)
	seeds := make([][]telemetry.Sample, len(instants))
	for i, inst := range instants { // a device per instant, so each history ends at its own now
		seeds[i] = seedHistory(t, store, deviceOf(i), inst.Now)
	}

	browser, cancel := newBrowser(t, chromium)
	defer cancel()
	toured := false
	for i, inst := range instants {
		tour := inst.Name == tourAt
		toured = toured || tour
		t.Run(inst.Name, func(t *testing.T) {
			dashboardAt(t, browser, d, store, inst, deviceOf(i), seeds[i], tour, artifacts)
		})
	}
	if !toured {
		t.Errorf("no instant is named %s: the screenshots were not taken", tourAt)
	}
}

func deviceOf(i int) string { return fmt.Sprintf("inverter-dash-%02d", i) }

// dashboardAt runs the page at one pinned instant in a tab of its own.
func dashboardAt(t *testing.T, browser context.Context, d *testenv.DB, store *telemetry.Store,
	inst testenv.Instant, device string, seed []telemetry.Sample, tour bool, artifacts string) {
	is := is.New(t)
	srv := httptest.NewServer(dashboardServer(t, d, store, device, inst.Loc, inst.Clock()))
	t.Cleanup(srv.Close)

	ctx, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	// Every request the page makes must go to this server.
	var (
		mu       sync.Mutex
		foreign  []string
		requests int
	)
	is.NoErr(chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			defer mu.Unlock()
			requests++
			if !strings.HasPrefix(e.Request.URL, srv.URL+"/") && !strings.HasPrefix(e.Request.URL, "data:") {
				foreign = append(foreign, e.Request.URL)
			}
		}
	}))
	console := collectConsole(t, ctx)
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	is.NoErr(err)
	// The browser's calendar is the instant's: its zone and a clock stopped there.
	_, err = chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: inst.Loc.String()})
	is.NoErr(err)
	_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: fmt.Sprintf(pinDate, inst.Now.UnixMilli())})
	is.NoErr(err)

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, ctx, artifacts, "failed-"+strings.NewReplacer(" ", "-", "/", "-").Replace(inst.Name+" "+name))
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
	screenshot := func(name string) {
		if tour {
			shot(t, ctx, artifacts, name)
		}
	}

	step("open the page", chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	is.Equal(eval(`String(Date.now())`), fmt.Sprint(inst.Now.UnixMilli())) // the browser believes the instant
	screenshot("signin-1920-light")

	if tour { // A wrong token is refused and stays on the sign-in form.
		step("sign in with a wrong token", chromedp.SendKeys(chromedp.CSS(`#token`), "not-a-token"),
			chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#signin-error`)))
		is.True(strings.Contains(eval(`document.getElementById('signin-error').textContent`), "not accepted"))
		is.Equal(eval(`String(localStorage.getItem('sungrow.token'))`), "null")
		eval(`document.getElementById('token').value = ''`)
	}
	step("sign in", chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#signin-btn`)), chromedp.WaitVisible(chromedp.CSS(`#dash`)))
	is.Equal(eval(`localStorage.getItem('sungrow.token')`), token)
	is.Equal(eval(`document.getElementById('device').textContent`), device)

	// The seeded history ends three hours ago or a little more (its samples are on whole
	// hours): the page must say so, unmistakably.
	waitFor("stale state", `document.body.dataset.live === 'stale'`)
	is.Equal(eval(`String(document.getElementById('stale').hidden)`), "false")
	staleText := eval(`document.getElementById('stale').textContent`)
	if age := inst.Now.Sub(seed[len(seed)-1].TS); !strings.Contains(staleText, humanAge(age)) {
		t.Errorf("stale notice %q does not give the newest reading's age, %s", staleText, humanAge(age))
	}
	checkLive(t, is, srv.URL, device, eval)
	screenshot("stale-1920-light")

	// A fresh sample arrives through the API; the next poll shows it, no longer stale.
	// The page polls again when it becomes visible, as after a hidden tab.
	fresh := map[string]any{
		"device_id": device, "ts": inst.Now.UTC().Format(time.RFC3339Nano),
		"pv_power_w": 3456.7, "pv_daily_kwh": 12.34, "battery_power_w": -1234.5,
		"battery_soc_pct": 67.8, "battery_temp_c": 24.5, "load_power_w": 2345.6,
		"export_power_w": -123.4,
	}
	ingest(t, srv.URL, fresh)
	if !tour { // The tour waits for the page's own poll; the rest need not wait 5 s.
		eval(`document.dispatchEvent(new Event('visibilitychange')), ''`) // polls at once
	}
	waitFor("fresh reading", `document.body.dataset.live === 'fresh' &&
		document.getElementById('pv-value').dataset.value === '3456.7'`)
	is.Equal(eval(`String(document.getElementById('stale').hidden)`), "true")
	checkLive(t, is, srv.URL, device, eval)
	is.Equal(eval(`document.getElementById('grid-dir').textContent`), "importing")
	is.Equal(eval(`document.getElementById('battery-value').textContent`), "discharging 1.23 kW")
	is.Equal(eval(`document.getElementById('line-grid').getAttribute('class')`), "line on") // grid → home
	is.Equal(eval(`document.getElementById('line-battery').getAttribute('class')`), "line on rev")

	// A chart for every frame, with as many buckets as /v1/series gives, its totals,
	// and bars of each kind the buckets hold.
	for _, frame := range []string{"day", "week", "month", "year", "all"} {
		rows := fetchSeries(t, srv.URL, device, frame, "")
		is.True(len(rows) > 0) // the fresh sample is in every frame
		step("show "+frame, chromedp.Click(chromedp.CSS(`.tabs button[data-frame="`+frame+`"]`)))
		waitFor(frame+" chart", fmt.Sprintf(`(() => { const c = document.getElementById('chart');
			return c.dataset.state === 'drawn' && c.dataset.frame === %q && c.dataset.buckets === '%d'; })()`, frame, len(rows)))
		checkTotalsShown(t, frame, eval, fetchTotals(t, srv.URL, device, frame, ""))
		var want struct{ maxPV, maxHome float64 } // the tallest bars, kWh
		for _, r := range rows {
			want.maxPV, want.maxHome = max(want.maxPV, r["pv_kwh"].(float64)), max(want.maxHome, r["load_kwh"].(float64))
		}
		var painted struct{ Solar, Home int }
		is.NoErr(json.Unmarshal([]byte(eval(paintedBars)), &painted))
		// A bar under 5 %% of the tallest may be too thin to count pixels in.
		tallest := max(want.maxPV, want.maxHome)
		if want.maxPV > 0.05*tallest && painted.Solar == 0 {
			t.Errorf("%s: no solar bar painted; the tallest holds %.2f kWh", frame, want.maxPV)
		}
		if want.maxHome > 0.05*tallest && painted.Home == 0 {
			t.Errorf("%s: no home bar painted; the tallest holds %.2f kWh", frame, want.maxHome)
		}
		screenshot(frame + "-1920-light")
	}

	// Previous and next walk through days via date=; today is the instant's.
	today := inst.Now.Format(time.DateOnly)
	yesterday := inst.Now.AddDate(0, 0, -1).Format(time.DateOnly)
	step("back to day", chromedp.Click(chromedp.CSS(`.tabs button[data-frame="day"]`)))
	waitFor("today", `document.getElementById('chart').dataset.date === '`+today+`'`)
	is.Equal(eval(`String(document.getElementById('next').disabled)`), "true") // no future
	before := fetchSeries(t, srv.URL, device, "day", yesterday)
	is.Equal(len(before), seededHours(seed, inst.Now.AddDate(0, 0, -1))) // every seeded hour of yesterday
	step("previous day", chromedp.Click(chromedp.CSS(`#prev`)))
	waitFor("yesterday", fmt.Sprintf(`(() => { const c = document.getElementById('chart');
		return c.dataset.state === 'drawn' && c.dataset.date === %q && c.dataset.buckets === '%d'; })()`,
		yesterday, len(before)))
	is.Equal(eval(`String(document.getElementById('next').disabled)`), "false")
	step("next day", chromedp.Click(chromedp.CSS(`#next`)))
	waitFor("today again", `document.getElementById('chart').dataset.date === '`+today+`'`)

	if tour { // The same page at phone width, and both widths dark.
		step("phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateScale(2)))
		waitFor("phone layout", `document.documentElement.scrollWidth <= 375`)
		shot(t, ctx, artifacts, "day-375-light")
		step("dark", setColorScheme("dark"))
		waitFor("dark colours", `getComputedStyle(document.body).backgroundColor !== 'rgb(243, 245, 248)'`)
		shot(t, ctx, artifacts, "day-375-dark")
		step("desktop dark", chromedp.EmulateViewport(1920, 1080))
		shot(t, ctx, artifacts, "day-1920-dark")
		step("light", setColorScheme("light"))
	}

	step("sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	is.Equal(eval(`String(localStorage.getItem('sungrow.token'))`), "null")
	is.Equal(eval(`String(document.getElementById('dash').hidden)`), "true")

	mu.Lock()
	defer mu.Unlock()
	is.True(requests > 0)
	if len(foreign) > 0 {
		t.Errorf("the page asked for something outside the server: %v", foreign)
	}
	if msgs := console(); msgs != "" {
		t.Errorf("console errors (CSP violations show here too):\n%s", msgs)
	}
}

// pinDate stops the page's clock at an instant (%d, Unix ms) before any script of the
// page runs: new Date() and Date.now() say it; dates given explicitly are as ever.
const pinDate = `(() => {
	const pinned = %d;
	const RealDate = Date;
	function PinnedDate(...args) {
		if (!new.target) return new RealDate(pinned).toString();
		return args.length ? new RealDate(...args) : new RealDate(pinned);
	}
	PinnedDate.prototype = RealDate.prototype;
	PinnedDate.now = () => pinned;
	PinnedDate.parse = RealDate.parse;
	PinnedDate.UTC = RealDate.UTC;
	globalThis.Date = PinnedDate;
})();`

// paintedBars counts the chart's pixels in the light theme's solar (#f59e0b) and home
// (#3b82f6) colours: zero means no bar of that kind was drawn.
const paintedBars = `(() => {
	const c = document.querySelector('#chart canvas');
	const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
	const near = (i, r, g, b) => Math.abs(px[i] - r) < 6 && Math.abs(px[i + 1] - g) < 6 && Math.abs(px[i + 2] - b) < 6;
	let solar = 0, home = 0;
	for (let i = 0; i < px.length; i += 4) {
		if (near(i, 245, 158, 11)) solar++;
		if (near(i, 59, 130, 246)) home++;
	}
	return JSON.stringify({ solar, home });
})()`

// humanAge formats an age the way the page does.
func humanAge(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	switch m, h := s/60, s/3600; {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case h < 48 && m%60 != 0:
		return fmt.Sprintf("%d h %d min", h, m%60)
	case h < 48:
		return fmt.Sprintf("%d h", h)
	default:
		return fmt.Sprintf("%d days", h/24)
	}
}

// checkLive compares what the page shows with what /v1/realtime answers.
func checkLive(t *testing.T, is *is.I, base, device string, eval func(string) string) {
	t.Helper()
	var rt map[string]any
	get(t, base+"/v1/realtime?device_id="+device, &rt)
	for id, field := range map[string]string{
		"pv-value": "pv_power_w", "battery-soc": "battery_soc_pct", "battery-value": "battery_power_w",
		"house-value": "load_power_w", "grid-value": "export_power_w", "pv-daily": "pv_daily_kwh",
		"battery-temp": "battery_temp_c",
	} {
		shown := eval(`document.getElementById('` + id + `').dataset.value`)
		want := ""
		if v, ok := rt[field].(float64); ok {
			want = fmt.Sprint(v)
		}
		if shown != want {
			t.Errorf("#%s shows %s = %q, /v1/realtime says %q", id, field, shown, want)
		}
	}
	// And the words a person reads.
	is.Equal(eval(`document.getElementById('pv-value').textContent`), watts(rt["pv_power_w"].(float64)))
	is.Equal(eval(`document.getElementById('house-value').textContent`), watts(rt["load_power_w"].(float64)))
	is.Equal(eval(`document.getElementById('grid-value').textContent`), watts(rt["export_power_w"].(float64)))
	is.Equal(eval(`document.getElementById('battery-soc').textContent`),
		fmt.Sprintf("%d %%", int(math.Round(rt["battery_soc_pct"].(float64)))))
}

// watts formats power the way the page does.
func watts(w float64) string {
	w = math.Abs(w)
	if w < 1000 {
		return fmt.Sprintf("%d W", int(math.Round(w)))
	}
	return fmt.Sprintf("%.2f kW", w/1000)
}

// seedHistory stores a solar day shape for device over the 400 days before now, up to
// three hours ago, so every frame has data and the newest reading is stale: a sample
// an hour for the last 40 days, one every four hours before. It returns the samples.
func seedHistory(t *testing.T, store *telemetry.Store, device string, now time.Time) []telemetry.Sample {
	t.Helper()
	end := now.Add(-3 * time.Hour)
	hourly := end.Add(-40 * 24 * time.Hour)
	var all []telemetry.Sample
	for ts := end.Add(-400 * 24 * time.Hour).Truncate(time.Hour); !ts.After(end); ts = ts.Add(time.Hour) {
		if ts.Before(hourly) && ts.Hour()%4 != 0 {
			continue
		}
		h := float64(ts.Hour()) + 0.5
		pv := math.Max(0, math.Sin((h-6)/13*math.Pi)) * (2500 + 1500*math.Cos(float64(ts.YearDay())/366*2*math.Pi))
		load := 450 + 900*math.Exp(-math.Pow(h-19, 2)/6) + 300*math.Exp(-math.Pow(h-8, 2)/3)
		battery := math.Max(-2500, math.Min(2500, (pv-load)*0.6))
		temp := 22.0
		all = append(all, telemetry.Sample{
			DeviceID: device, TS: ts, PVPowerW: pv, BatteryPowerW: battery,
			BatterySoCPct: 50 + 40*math.Sin((h-10)/24*2*math.Pi), BatteryTempC: &temp,
			LoadPowerW: load, ExportPowerW: pv - load - battery, SampleCount: 720,
		})
	}
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 1000)
		if _, err := store.Insert(context.Background(), device, rest[:n]); err != nil {
			t.Fatalf("seed: %v", err)
		}
		rest = rest[n:]
	}
	return all
}

// seededHours counts the hours of the local day of day that hold a seeded sample.
func seededHours(seed []telemetry.Sample, day time.Time) int {
	loc := day.Location()
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	to := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	hours := map[time.Time]bool{}
	for _, s := range seed {
		if !s.TS.Before(from) && s.TS.Before(to) {
			hours[s.TS.Truncate(time.Hour)] = true
		}
	}
	return len(hours)
}

func ingest(t *testing.T, base string, sample map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"samples": []any{sample}})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("ingest: %d %s", res.StatusCode, b)
	}
}

func fetchSeries(t *testing.T, base, device, frame, date string) []map[string]any {
	t.Helper()
	var out struct {
		Series []map[string]any `json:"series"`
	}
	u := base + "/v1/series?device_id=" + device + "&frame=" + frame
	if date != "" {
		u += "&date=" + date
	}
	get(t, u, &out)
	return out.Series
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

// requireChromium returns the browser's path. Without it the test skips on a laptop
// and fails in CI, where scripts/services installs it.
func requireChromium(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI (scripts/services installs Debian's chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s not installed (apt-get install chromium): %v", chromiumPath, err)
	}
	return chromiumPath
}

// newBrowser starts a headless Chromium of its own, with a fresh profile and nothing
// that phones home, so the only traffic is the test's.
func newBrowser(t *testing.T, path string) (context.Context, context.CancelFunc) {
	t.Helper()
	var out bytes.Buffer
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1920, 1080),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Start the browser now, on a context without a deadline: it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start %s: %v\n%s", path, err, out.String())
	}
	return ctx, func() {
		cancelCtx()
		cancelAlloc()
	}
}

// collectConsole gathers the page's console errors, uncaught exceptions and browser
// log errors (a Content-Security-Policy violation is one); the func returns them.
func collectConsole(t *testing.T, ctx context.Context) func() string {
	t.Helper()
	var (
		mu   sync.Mutex
		msgs []string
	)
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	messages := chromedp.Console(lctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The wrong-token step's 401 is expected; nothing else is.
			if strings.Contains(m.Text, "status of 401") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
				mu.Lock()
				msgs = append(msgs, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(msgs, "\n")
	}
}

func setColorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return chromedp.Void{}, err
	}
}

// steps returns the two things a page test does over and over: run actions (failing
// with a screenshot named after the step and the console's errors) and evaluate a
// string expression.
func steps(t *testing.T, ctx context.Context, artifacts, prefix string, console func() string) (
	run func(name string, actions ...chromedp.Action[chromedp.Void]), eval func(js string) string) {
	run = func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, ctx, artifacts, "failed-"+prefix+"-"+strings.ReplaceAll(name, " ", "-"))
			t.Fatalf("%s: %v\nconsole: %s", name, err, console())
		}
	}
	eval = func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	return run, eval
}

// shot writes a full-page PNG to the artifact directory.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("write %s: %v", p, err)
		return
	}
	t.Logf("screenshot: %s", p)
}

// artifactDir is $SUNGROW_ARTIFACTS/dashboard, or artifacts/dashboard at the module
// root (git-ignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("SUNGROW_ARTIFACTS")
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for root = wd; ; root = filepath.Dir(root) {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			if filepath.Dir(root) == root {
				t.Fatalf("no go.mod above %s", wd)
			}
		}
		root = filepath.Join(root, "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(root, "dashboard"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Screenshots of an earlier run would pass for this one's. Once per run: the
	// browser tests run in parallel and must not remove each other's.
	clearArtifacts.Do(func() {
		old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		for _, p := range old {
			_ = os.Remove(p)
		}
	})
	return dir
}

var clearArtifacts sync.Once

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
