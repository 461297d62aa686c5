package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/stream"
	"github.com/sungrow/sungrow/telemetry"
)

// liveAt is the server's pinned instant in the live-view test; the page takes its
// time from the Date header, which says it too.
var liveAt = time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)

const liveDevice = "inverter-live"

// TestDashboardLiveViewStreams: the page's live view follows GET /v1/stream, so an
// ingested sample shows without a single /v1/realtime request while the stream works;
// when the stream goes away the page falls back to polling and still shows the next.
func TestDashboardLiveViewStreams(t *testing.T) {
	chromium := requireChromium(t)
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	_, err := store.Insert(context.Background(), liveDevice, []telemetry.Sample{{DeviceID: liveDevice,
		TS: liveAt.Add(-3 * time.Hour), PVPowerW: 100, BatterySoCPct: 50, LoadPowerW: 300, SampleCount: 1}})
	is.NoErr(err)

	hub := liveHub(t, d, store)
	api := httpapi.NewServer(httpapi.Deps{
		Logger:               discardLogger(),
		Tokens:               map[string]string{token: liveDevice},
		Samples:              store,
		Now:                  func() time.Time { return liveAt },
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Stored:               []httpapi.StoredListener{hub},
		Stream:               hub,
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", liveAt.Format(http.TimeFormat))
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(hub.EndStreams) // first: the page's open stream would hold srv.Close up

	browser, cancel := newBrowser(t, chromium)
	defer cancel()
	ctx, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	var (
		mu       sync.Mutex
		realtime int // requests for /v1/realtime
	)
	is.NoErr(chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(e.Request.URL, "/v1/realtime") {
			mu.Lock()
			realtime++
			mu.Unlock()
		}
	}))
	polls := func() int { mu.Lock(); defer mu.Unlock(); return realtime }
	console := collectConsole(t, ctx)
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	is.NoErr(err)
	run := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v\nconsole: %s", name, err, console())
		}
	}
	waitFor := func(name, js string) {
		t.Helper()
		run(name, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond),
				chromedp.WithPollingTimeout(45*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		})
	}
	sample := func(ts time.Time, pv float64) map[string]any {
		return map[string]any{"device_id": liveDevice, "ts": ts.Format(time.RFC3339), "pv_power_w": pv,
			"battery_power_w": 0, "battery_soc_pct": 60, "load_power_w": 400, "export_power_w": 0}
	}

	run("sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#signin`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token), chromedp.Click(chromedp.CSS(`#signin-btn`)),
		chromedp.WaitVisible(chromedp.CSS(`#dash`)))
	waitFor("the stream's first event", `document.body.dataset.stream === 'open' &&
		document.body.dataset.live === 'stale' && document.getElementById('pv-value').dataset.value === '100'`)

	ingest(t, srv.URL, sample(liveAt.Add(-10*time.Second), 3456.7))
	answered := time.Now()
	waitFor("the ingested sample", `document.body.dataset.live === 'fresh' &&
		document.getElementById('pv-value').dataset.value === '3456.7'`)
	t.Logf("ingest answer → live view changed: %s", time.Since(answered))
	is.Equal(polls(), 0) // streaming works: not one /v1/realtime request

	// The stream goes away (and new ones are refused): the page polls instead.
	hub.EndStreams()
	waitFor("the fallback", `document.body.dataset.stream === 'polling'`)
	ingest(t, srv.URL, sample(liveAt.Add(-5*time.Second), 2222))
	waitFor("the sample through polling", `document.getElementById('pv-value').dataset.value === '2222'`)
	is.True(polls() > 0)
}

// liveHub runs the stream hub as serve wires it (LISTEN/NOTIFY over the test's
// database) until the test ends.
func liveHub(t *testing.T, d *testenv.DB, store *telemetry.Store) *stream.Hub {
	t.Helper()
	hub := stream.New(stream.Options{Source: httpapi.NewRealtimeSource(store), Publish: stream.Notify(d.Pool),
		Subscription: stream.Listen(d.Pool.Config().ConnConfig, discardLogger()), Logger: discardLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { hub.EndStreams(); cancel(); <-done })
	return hub
}
