package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/stream"
	"github.com/sungrow/sungrow/telemetry"
)

// streamOpts shape one stream test's server.
type streamOpts struct {
	maxClients int
	keepalive  time.Duration
	// timeouts, when set, are the server's read and write timeouts, to show that
	// they do not cut streams.
	timeouts time.Duration
	// smallBuffers shrinks the kernel's send buffer of every accepted connection, so
	// a client that reads nothing blocks the server's writes soon.
	smallBuffers bool
	// conn is the subscription's connection; nil: the pool's.
	conn *pgx.ConnConfig
}

type streamServer struct {
	url string
	hub *stream.Hub
}

// newStreamServer serves the API with a stream hub over pool: LISTEN/NOTIFY on
// PostgreSQL, polling on the single-connection TimescaleDB test server (as serve does).
func newStreamServer(t *testing.T, pool *pgxpool.Pool, timescale bool, o streamOpts) *streamServer {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var sub stream.Subscription = stream.Poll(100 * time.Millisecond)
	if !timescale {
		conn := o.conn
		if conn == nil {
			conn = pool.Config().ConnConfig
		}
		sub = stream.Listen(conn, logger)
	}
	store := telemetry.NewStore(pool)
	hub := stream.New(stream.Options{Source: httpapi.NewRealtimeSource(store), Publish: stream.Notify(pool),
		Subscription: sub, MaxClients: o.maxClients, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	srv := httptest.NewUnstartedServer(httpapi.NewServer(httpapi.Deps{
		Logger:               logger,
		Tokens:               map[string]string{token: device, "other-token": "inverter-02"},
		Samples:              store,
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Now:                  func() time.Time { return fixedNow },
		Stored:               []httpapi.StoredListener{hub},
		Stream:               hub,
		StreamKeepalive:      o.keepalive,
	}))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = o.timeouts, o.timeouts
	if o.smallBuffers {
		srv.Listener = smallBufferListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(hub.EndStreams) // runs first: open streams would hold srv.Close up
	return &streamServer{url: srv.URL, hub: hub}
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(1) // the kernel rounds up to its minimum, a few KiB
	}
	return c, err
}

// sampleTS is the ts of sampleJSON(i).
func sampleTS(i int) time.Time { return fixedNow.Add(-4*time.Hour + time.Duration(i)*5*time.Second) }

func eventID(i int) string { return sampleTS(i).UTC().Format(time.RFC3339Nano) }

func ingest(t *testing.T, url string, from, to int) time.Time {
	t.Helper()
	res := post(t, url, token, batch(from, to))
	if res.status != http.StatusOK {
		t.Fatalf("ingest %d..%d: %d %v", from, to, res.status, res.body)
	}
	return time.Now()
}

func realtimeBody(t *testing.T, url string) string {
	t.Helper()
	res, body := get(t, url+"/v1/realtime?device_id="+device, map[string]string{"Authorization": "Bearer " + token})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("realtime: %d %s", res.StatusCode, body)
	}
	return body
}

// wait is how long a test waits for an event that should come within a second: long
// enough for a loaded machine, and no measure of speed (bench/stream/run is).
const wait = 10 * time.Second

func TestStreamSendsTheNewestSampleAtOnceThenEachNewerOne(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newStreamServer(t, d.Pool, d.Timescale, streamOpts{})
		ingest(t, srv.url, 0, 3)

		s := testenv.OpenStream(t, srv.url, token, device, "")
		is.Equal(s.Status, http.StatusOK)
		is.Equal(s.Header.Get("Content-Type"), "text/event-stream")
		is.Equal(s.Header.Get("Cache-Control"), "no-cache")
		is.Equal(s.Header.Get("X-Accel-Buffering"), "no")
		is.Equal(s.Next(t, wait).Retry, "2000")

		first := s.NextSample(t, wait)
		is.Equal(first.ID, eventID(2))                 // the newest of the three
		is.Equal(first.Data, realtimeBody(t, srv.url)) // the very JSON of /v1/realtime

		answered := ingest(t, srv.url, 3, 6) // three together: the newest is what matters
		ev := s.NextSample(t, wait)
		t.Logf("ingest answer → event: %s", ev.At.Sub(answered))
		is.Equal(ev.ID, eventID(5))
		var got telemetry.Sample
		is.NoErr(json.Unmarshal([]byte(ev.Data), &got))
		is.Equal(got.PVPowerW, 1005.5)
		is.Equal(ev.Data, realtimeBody(t, srv.url))
	})
}

func TestStreamOfADeviceWithoutSamplesWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{})
	s := testenv.OpenStream(t, srv.url, token, device, "")
	is.Equal(s.Status, http.StatusOK)
	is.Equal(s.Next(t, wait).Retry, "2000")
	ingest(t, srv.url, 7, 8)
	is.Equal(s.NextSample(t, wait).ID, eventID(7)) // nothing came before it
}

func TestStreamResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{})
	ingest(t, srv.url, 0, 3)

	upToDate := testenv.OpenStream(t, srv.url, token, device, eventID(2))
	behind := testenv.OpenStream(t, srv.url, token, device, eventID(1))
	foreign := testenv.OpenStream(t, srv.url, token, device, "not-a-timestamp")
	is.Equal(behind.NextSample(t, wait).ID, eventID(2))  // newer than its id: sent at once
	is.Equal(foreign.NextSample(t, wait).ID, eventID(2)) // an id not ours counts as none

	ingest(t, srv.url, 3, 4)
	is.Equal(upToDate.NextSample(t, wait).ID, eventID(3)) // sample 2 was not sent again
	is.Equal(behind.NextSample(t, wait).ID, eventID(3))
}

func TestStreamRefusesLikeRealtime(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{})
	for _, tt := range []struct {
		token, device string
		status        int
	}{
		{"", device, http.StatusUnauthorized},
		{"wrong", device, http.StatusUnauthorized},
		{token, "inverter-02", http.StatusForbidden},
		{token, "", http.StatusUnprocessableEntity},
	} {
		s := testenv.OpenStream(t, srv.url, tt.token, tt.device, "")
		is.Equal(s.Status, tt.status)
		is.Equal(s.Header.Get("Content-Type"), "application/problem+json")
	}
}

func TestStreamSendsNothingForABackfilledOlderSample(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		srv := newStreamServer(t, d.Pool, d.Timescale, streamOpts{})
		ingest(t, srv.url, 10, 11)
		s := testenv.OpenStream(t, srv.url, token, device, "")
		is.Equal(s.NextSample(t, wait).ID, eventID(10))

		ingest(t, srv.url, 5, 6) // new row, older ts
		ingest(t, srv.url, 11, 12)
		is.Equal(s.NextSample(t, wait).ID, eventID(11)) // the backfilled sample 5 never came
	})
}

func TestStreamKeepalivesAndServerTimeoutsDoNotEndIt(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{keepalive: 50 * time.Millisecond, timeouts: 300 * time.Millisecond})
	s := testenv.OpenStream(t, srv.url, token, device, "")
	opened := time.Now()
	keepalives := 0
	for time.Since(opened) < time.Second { // past both timeouts, three times over
		ev := s.Next(t, wait)
		if ev.Comment == "keepalive" {
			keepalives++
		}
	}
	is.True(keepalives >= 3)
	ingest(t, srv.url, 0, 1)
	is.Equal(s.NextSample(t, wait).ID, eventID(0)) // still delivering
}

func TestStreamOnOneInstanceReceivesSamplesIngestedThroughAnother(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	a := newStreamServer(t, d.Pool, false, streamOpts{})
	b := newStreamServer(t, d.Pool, false, streamOpts{})
	onB := testenv.OpenStream(t, b.url, token, device, "")
	is.Equal(onB.Next(t, wait).Retry, "2000")
	// Whether B's LISTEN began before or after the first ingest, B gets the sample:
	// after, its catch-up read brings it.
	for i := range 5 {
		answered := ingest(t, a.url, i, i+1)
		ev := onB.NextSample(t, wait)
		is.Equal(ev.ID, eventID(i))
		t.Logf("ingest answer on A → event on B: %s", ev.At.Sub(answered))
	}
}

// dialer opens raw TCP connections with the smallest receive buffer the kernel gives.
func tinyReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var err error
	_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) })
	return err
}

func TestStreamClientThatNeverReadsDelaysNeitherIngestNorOtherStreams(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{smallBuffers: true})
	ingest(t, srv.url, 0, 1)

	// A client that sends its request and never reads a byte: once a few KiB of
	// events fill both kernel buffers, the server's write to it blocks.
	dialer := net.Dialer{Control: tinyReceiveBuffer}
	conn, err := dialer.Dial("tcp", srv.url[len("http://"):])
	is.NoErr(err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /v1/stream?device_id=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", device, token)
	is.NoErr(err)
	testenv.Await(t, "the silent stream to open", wait, func() bool { return srv.hub.Open() == 1 })

	reader := testenv.OpenStream(t, srv.url, token, device, "")
	const n = 300 // ~100 KiB of events for the silent client
	for i := 1; i <= n; i++ {
		ingest(t, srv.url, i, i+1) // each answered 200 at once; a blocked hub would stall here
	}
	for {
		ev := reader.NextSample(t, wait)
		if ev.ID == eventID(n) {
			break
		}
	}
	is.Equal(srv.hub.Open(), 2) // the silent client holds its stream, and one slot of it
}

func TestStreamBeyondMaxClientsIs503(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{maxClients: 2})
	first := testenv.OpenStream(t, srv.url, token, device, "")
	testenv.OpenStream(t, srv.url, token, device, "")
	third := testenv.OpenStream(t, srv.url, token, device, "")
	is.Equal(third.Status, http.StatusServiceUnavailable)
	is.True(third.Header.Get("Retry-After") != "")
	is.Equal(third.Header.Get("Content-Type"), "application/problem+json")

	first.Close() // a stream that ends makes room
	testenv.Await(t, "the closed stream to be released", wait, func() bool { return srv.hub.Open() == 1 })
	is.Equal(testenv.OpenStream(t, srv.url, token, device, "").Status, http.StatusOK)
}

// settledGoroutines waits until the goroutine count holds still for a moment (the
// connections just closed wind down), and returns it.
func settledGoroutines(t *testing.T) int {
	n := runtime.NumGoroutine()
	testenv.Await(t, "the goroutine count to settle", wait, func() bool {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		defer func() { n = m }()
		return m == n
	})
	return n
}

// Not parallel: it counts the goroutines of the whole test binary.
func TestStreamGoroutinesReturnToBaselineAfterClientsLeave(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newStreamServer(t, d.Pool, false, streamOpts{})
	ingest(t, srv.url, 0, 1)
	http.DefaultClient.CloseIdleConnections()
	baseline := settledGoroutines(t)

	var streams []*testenv.SSE
	for range 50 {
		s := testenv.OpenStream(t, srv.url, token, device, "")
		is.Equal(s.Status, http.StatusOK)
		streams = append(streams, s)
	}
	for _, s := range streams {
		is.Equal(s.NextSample(t, wait).ID, eventID(0))
	}
	during := runtime.NumGoroutine()
	for _, s := range streams {
		s.Close()
	}
	testenv.Await(t, "goroutines back to their baseline", wait, func() bool { return runtime.NumGoroutine() <= baseline })
	is.Equal(srv.hub.Open(), 0)
	t.Logf("goroutines: %d before, %d with 50 streams, %d after", baseline, during, runtime.NumGoroutine())
}

func TestStreamCatchesUpAfterItsSubscriptionServerRestarted(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	pg := testenv.StartPostgres(t)
	pool, err := pgxpool.New(context.Background(), pg.URL("sungrow"))
	is.NoErr(err)
	defer pool.Close()
	testenv.Migrate(t, pool)

	// B's subscription dials through a switch the test holds, so it stays down after
	// the restart until the test says, while A already stores samples again.
	var reachable atomic.Bool
	reachable.Store(true)
	conn := pool.Config().ConnConfig.Copy()
	dial := conn.DialFunc
	conn.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !reachable.Load() {
			return nil, errors.New("test: the subscription cannot reach PostgreSQL")
		}
		return dial(ctx, network, addr)
	}
	a := newStreamServer(t, pool, false, streamOpts{})
	b := newStreamServer(t, pool, false, streamOpts{conn: conn})
	onB := testenv.OpenStream(t, b.url, token, device, "")
	is.Equal(onB.Next(t, wait).Retry, "2000")
	ingest(t, a.url, 0, 1)
	is.Equal(onB.NextSample(t, wait).ID, eventID(0))

	reachable.Store(false)
	pg.Crash(t)
	pg.Start(t)
	testenv.Await(t, "an ingest through A after the restart", 30*time.Second, func() bool {
		return post(t, a.url, token, batch(1, 2)).status == http.StatusOK
	})
	// A's notice of sample 1 went out while B was not listening: PostgreSQL keeps no
	// notice for a session that is not there, so only B's catch-up can bring it.
	reachable.Store(true)
	is.Equal(onB.NextSample(t, 30*time.Second).ID, eventID(1))

	ingest(t, a.url, 2, 3) // and notices flow again
	is.Equal(onB.NextSample(t, wait).ID, eventID(2))
}
