package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sungrow/sungrow/alerts"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/telemetry"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// clock is a test's "now", moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// receiver is a webhook: it answers with statuses in turn (then 200) and keeps what
// it accepted, and whether each signature verified.
type receiver struct {
	*httptest.Server
	secret   string
	mu       sync.Mutex
	statuses []int
	got      []alerts.Notification
	badSigs  int
	posts    int
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{secret: secret, statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts++
		if len(r.statuses) > 0 {
			status := r.statuses[0]
			r.statuses = r.statuses[1:]
			if status != http.StatusOK {
				w.WriteHeader(status)
				return
			}
		}
		if r.secret != "" && !alerts.Verify(r.secret, body, req.Header.Get(alerts.SignatureHeader)) {
			r.badSigs++
		}
		var n alerts.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("receiver: %v", err)
		}
		r.got = append(r.got, n)
	}))
	t.Cleanup(r.Close)
	return r
}

// states lists the states received, in order.
func (r *receiver) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.got {
		out = append(out, n.State)
	}
	return out
}

// URL is a webhook URL with a path that stands for the secret part (an ntfy topic).
func (r *receiver) URL() string { return r.Server.URL + "/topic-s3cr3t-path" }

func store(t *testing.T, pool *pgxpool.Pool, device string, ts time.Time, soc float64, temp *float64) {
	t.Helper()
	_, err := telemetry.NewStore(pool).Insert(context.Background(), device, []telemetry.Sample{
		{DeviceID: device, TS: ts, BatterySoCPct: soc, BatteryTempC: temp, SampleCount: 1}})
	if err != nil {
		t.Fatal(err)
	}
}

func addRule(t *testing.T, pool *pgxpool.Pool, c *clock, n alerts.NewRule) alerts.Rule {
	t.Helper()
	r, err := alerts.NewStore(pool, c.now).Add(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func after(d time.Duration) *time.Duration { return &d }

// checkAndDeliver is one turn of a service's loop.
func checkAndDeliver(t *testing.T, s *alerts.Service) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOfflineFiresOnceAndResolvesSigned(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		c := &clock{t: t0}
		recv := newReceiver(t, "hmac-key-xyz")
		secret := "hmac-key-xyz"
		logs := &testenv.LogBuffer{}
		logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		m := metrics.New()
		var problems map[string]bool
		svc := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now, Logger: logger, Metrics: m,
			Problems: func(p map[string]bool) { problems = p }})
		store(t, d.Pool, "inv", t0, 50, nil)
		r := addRule(t, d.Pool, c, alerts.NewRule{DeviceID: "inv", Kind: alerts.Offline, After: after(10 * time.Second),
			Webhooks: []string{recv.URL()}, Secret: &secret})

		for s := 1; s <= 30; s++ { // a check a second for 30 s of quiet
			c.set(t0.Add(time.Duration(s) * time.Second))
			checkAndDeliver(t, svc)
		}
		is.Equal(recv.states(), []string{"firing"})
		is.Equal(recv.badSigs, 0)
		is.Equal(testutil.ToFloat64(m.AlertsFiring.WithLabelValues("offline")), 1.0)
		is.Equal(problems, map[string]bool{"inv": true})
		got := recv.got[0]
		is.Equal(got.AlertID, r.ID)
		is.Equal(got.Rule, "offline")
		is.Equal(got.DeviceID, "inv")
		is.Equal(got.Since, t0)                  // quiet since the last sample
		is.Equal(got.At, t0.Add(10*time.Second)) // the first check at which 10 s had passed
		is.True(strings.Contains(got.Summary, "no sample since"))

		c.set(t0.Add(31 * time.Second))
		store(t, d.Pool, "inv", c.now(), 50, nil)
		c.set(t0.Add(32 * time.Second))
		checkAndDeliver(t, svc)
		checkAndDeliver(t, svc)
		is.Equal(recv.states(), []string{"firing", "resolved"})
		is.Equal(recv.badSigs, 0)
		is.Equal(testutil.ToFloat64(m.AlertsFiring.WithLabelValues("offline")), 0.0)
		is.Equal(testutil.ToFloat64(m.AlertDeliveries.WithLabelValues("delivered")), 2.0)
		is.Equal(problems, map[string]bool{})

		list, err := alerts.NewStore(d.Pool, c.now).List(context.Background(), "inv")
		is.NoErr(err)
		is.Equal(len(list), 1)
		is.Equal(list[0].Devices[0].State, "ok")
		is.Equal(len(list[0].Deliveries), 2)
		is.Equal(list[0].Deliveries[0].State, "resolved") // newest first
		is.True(list[0].Deliveries[0].DeliveredAt != nil)
		is.Equal(list[0].Webhooks, []string{alerts.RedactURL(recv.URL())})

		// Debug level included, no line holds the webhook's path or the secret.
		is.True(strings.Contains(logs.String(), `"alert firing"`))
		is.True(strings.Contains(logs.String(), `"alert delivered"`))
		is.True(!strings.Contains(logs.String(), "topic-s3cr3t-path"))
		is.True(!strings.Contains(logs.String(), secret))
	})
}

// A receiver that answers 500 twice gets the notification once it answers 200, once,
// and the resolution only after it: in order.
func TestRetriesKeepOrder(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	is := is.New(t)
	c := &clock{t: t0}
	recv := newReceiver(t, "", 500, 500, 200)
	logs := &testenv.LogBuffer{}
	m := metrics.New()
	svc := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now, Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	store(t, d.Pool, "inv", t0, 50, f(50))
	addRule(t, d.Pool, c, alerts.NewRule{DeviceID: "inv", Kind: alerts.BatteryTemp, Above: f(45), Webhooks: []string{recv.URL()}})

	checkAndDeliver(t, svc) // firing queued, first attempt: 500
	store(t, d.Pool, "inv", t0.Add(time.Second), 50, f(30))
	checkAndDeliver(t, svc) // resolved queued behind it; nothing is due
	is.Equal(recv.posts, 1)
	c.set(t0.Add(time.Second)) // the first retry, after 1 s: 500
	checkAndDeliver(t, svc)
	is.Equal(recv.posts, 2)
	c.set(t0.Add(2 * time.Second)) // not yet: the second retry waits 2 s
	checkAndDeliver(t, svc)
	is.Equal(recv.posts, 2)
	c.set(t0.Add(3 * time.Second)) // 200, then the resolution goes at once
	checkAndDeliver(t, svc)
	is.Equal(recv.posts, 4)
	is.Equal(recv.states(), []string{"firing", "resolved"})
	is.Equal(testutil.ToFloat64(m.AlertDeliveries.WithLabelValues("failed")), 2.0)
	is.Equal(testutil.ToFloat64(m.AlertDeliveries.WithLabelValues("delivered")), 2.0)
	is.True(strings.Contains(logs.String(), `"answer":"500 Internal Server Error"`))
	is.True(!strings.Contains(logs.String(), "topic-s3cr3t-path"))
}

// Two instances checking and delivering at once send each notification once; so does
// an instance started afresh (a restart) while the alert fires.
func TestTwoInstancesAndARestartSendOnce(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	is := is.New(t)
	c := &clock{t: t0}
	recv := newReceiver(t, "")
	store(t, d.Pool, "inv", t0, 50, nil)
	addRule(t, d.Pool, c, alerts.NewRule{All: true, Kind: alerts.Offline, After: after(10 * time.Second), Webhooks: []string{recv.URL()}})
	other, err := pgxpool.New(context.Background(), d.URL)
	is.NoErr(err)
	defer other.Close()
	a := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now})
	b := alerts.NewService(alerts.Options{Conn: other, Now: c.now})

	turns := func() {
		var wg sync.WaitGroup
		for _, s := range []*alerts.Service{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); checkAndDeliver(t, s) }()
		}
		wg.Wait()
	}
	for s := 0; s <= 20; s++ {
		c.set(t0.Add(time.Duration(s) * time.Second))
		turns()
	}
	is.Equal(recv.states(), []string{"firing"})

	restarted := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now})
	c.set(t0.Add(25 * time.Second))
	checkAndDeliver(t, restarted)
	is.Equal(recv.states(), []string{"firing"}) // no second firing after the restart

	store(t, d.Pool, "inv", t0.Add(26*time.Second), 50, nil)
	c.set(t0.Add(27 * time.Second))
	turns()
	turns()
	is.Equal(recv.states(), []string{"firing", "resolved"})
}

// A sample stamped 1970 is set aside and fires the clock rule once; a sample with a
// plausible time resolves it.
func TestClockFiresOnceFor1970(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		c := &clock{t: t0}
		recv := newReceiver(t, "")
		svc := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now})
		addRule(t, d.Pool, c, alerts.NewRule{All: true, Kind: alerts.Clock, Webhooks: []string{recv.URL()}})
		ctx := context.Background()
		ts := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
		aside := []telemetry.SetAside{{TS: ts, Problems: telemetry.Implausible(telemetry.Sample{TS: ts, SampleCount: 1}, t0),
			Sample: []byte(`{"device_id":"inv","ts":"1970-01-01T00:00:05Z"}`)}}
		_, err := telemetry.NewStore(d.Pool).InsertSettingAside(ctx, "inv", nil, aside, t0)
		is.NoErr(err)
		for s := 1; s <= 5; s++ {
			c.set(t0.Add(time.Duration(s) * time.Second))
			checkAndDeliver(t, svc)
		}
		is.Equal(recv.states(), []string{"firing"})
		is.Equal(recv.got[0].DeviceID, "inv")
		store(t, d.Pool, "inv", t0.Add(6*time.Second), 50, nil)
		c.set(t0.Add(7 * time.Second))
		checkAndDeliver(t, svc)
		is.Equal(recv.states(), []string{"firing", "resolved"})
	})
}

func TestAlertTestReportsTheAnswer(t *testing.T) {
	is := is.New(t)
	ok := newReceiver(t, "k")
	failing := newReceiver(t, "", 503)
	answers, err := alerts.Test(context.Background(), http.DefaultClient,
		alerts.Rule{ID: 7, Kind: alerts.Clock, Webhooks: []string{ok.URL(), failing.URL(), "http://127.0.0.1:1/x"}, Secret: "k"}, t0)
	is.NoErr(err)
	is.Equal(answers[0].Status, 200)
	is.Equal(answers[1].Status, 503)
	is.Equal(answers[2].Status, 0)
	is.True(strings.HasPrefix(answers[2].Error, "could not connect"))
	is.True(!strings.Contains(answers[2].Error, "127.0.0.1")) // no host, no URL
	is.Equal(ok.states(), []string{"test"})
	is.Equal(ok.badSigs, 0)
}

func f(v float64) *float64 { return &v }

// A rule for every device stops watching a device once it is removed: what fired for
// it resolves, once.
func TestRemovedDeviceResolves(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	is := is.New(t)
	ctx := context.Background()
	c := &clock{t: t0}
	recv := newReceiver(t, "")
	admin := devices.NewAdmin(d.Pool)
	_, _, err := admin.AddDevice(ctx, "gone", "", 0, "")
	is.NoErr(err)
	store(t, d.Pool, "gone", t0, 50, nil)
	addRule(t, d.Pool, c, alerts.NewRule{All: true, Kind: alerts.Offline, After: after(10 * time.Second), Webhooks: []string{recv.URL()}})
	svc := alerts.NewService(alerts.Options{Conn: d.Pool, Now: c.now})
	c.set(t0.Add(10 * time.Second))
	checkAndDeliver(t, svc)
	_, err = admin.RemoveDevice(ctx, "gone", false)
	is.NoErr(err)
	for s := 11; s <= 15; s++ {
		c.set(t0.Add(time.Duration(s) * time.Second))
		checkAndDeliver(t, svc)
	}
	is.Equal(recv.states(), []string{"firing", "resolved"})
	is.True(strings.Contains(recv.got[1].Summary, "removed"))
}
