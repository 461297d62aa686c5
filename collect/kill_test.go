package collect_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/collect"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
)

// TestCollectKill9LosesOnlyTheSecondsItWasDown is the issue's "kill -9 and a restart
// on the same spool lose only the seconds it was down", against the real binary (a
// kill -9 needs a process of its own). The first run is killed while an upload is in
// flight and unanswered, so a collector that forgot readings before the 200, or kept
// them anywhere but the spool file, loses them here.
func TestCollectKill9LosesOnlyTheSecondsItWasDown(t *testing.T) {
	is := is.New(t)
	bin := buildSungrow(t)
	db := testenv.New(t, testenv.Postgres)
	serve := testserve.StartServe(t, map[string]string{"DATABASE_URL": db.URL, "DEVICE_TOKENS": token + ":inverter-01"})
	target, err := url.Parse(serve.Base)
	is.NoErr(err)
	front := &holdingFront{next: httputil.NewSingleHostReverseProxy(target), release: make(chan struct{})}
	front.hold.Store(true)
	proxy := httptest.NewServer(front)
	t.Cleanup(proxy.Close)
	t.Cleanup(func() { close(front.release) }) // runs before proxy.Close, which waits for held requests
	modbus := startInverter(t)
	spool := filepath.Join(t.TempDir(), "spool.db")
	args := func(uploadEvery, listen string) []string {
		return []string{"collect", "--modbus", modbus, "--via", proxy.URL, "--interval", "1s",
			"--upload-every", uploadEvery, "--spool", spool, "--listen", listen}
	}

	// Run 1: every upload is swallowed unanswered, so the readings live in the spool only.
	listen1 := testenv.FreeAddr(t)
	first := startCollector(t, bin, args("2s", listen1)...)
	var taken1 float64
	testenv.Await(t, "6 readings taken and an upload in flight", 90*time.Second, func() bool {
		m := scrape(listen1)
		taken1 = m["sungrow_collect_readings_total"]
		return taken1 >= 6 && front.held.Load() >= 1
	})
	is.NoErr(first.cmd.Process.Kill())
	killedAt := time.Now()
	var exit *exec.ExitError
	is.True(errors.As(first.wait(30*time.Second), &exit))
	is.Equal(exit.Sys().(syscall.WaitStatus).Signal(), syscall.SIGKILL) // killed, not exited
	t.Logf("killed with %.0f readings taken, %d uploads held unanswered", taken1, front.held.Load())
	is.Equal(countRows(t, db.URL), 0) // nothing reached the server: the spool alone has them

	// What the first run synced, read from the file it left.
	s, err := collect.OpenSpool(spool, 1<<20)
	is.NoErr(err)
	synced, err := s.Oldest(s.Depth() + 1)
	is.NoErr(err)
	is.NoErr(s.Close())
	var ts1 []int64
	for _, r := range synced {
		ts1 = append(ts1, r.Sample.TS.UnixMilli())
	}
	t.Logf("the spool holds %d readings of the first run", len(ts1))
	// Every reading the first run counted was synced before the kill (the scrape may
	// lag the kill by the reading or two taken after it).
	is.True(float64(len(ts1)) >= taken1)
	is.True(float64(len(ts1)) <= taken1+2)
	// About one a second over the first run's window (one slow tick allowed).
	span := time.Duration(ts1[len(ts1)-1]-ts1[0]) * time.Millisecond
	is.True(len(ts1) >= int(span.Seconds()))

	// Down for a while, as systemd's RestartSec would leave it.
	time.Sleep(3 * time.Second)
	front.hold.Store(false)
	restartedAt := time.Now()
	downtime := restartedAt.Sub(killedAt)
	listen2 := testenv.FreeAddr(t)
	second := startCollector(t, bin, args("1s", listen2)...)
	var taken2 float64
	testenv.Await(t, "the backlog and 4 new readings uploaded", 90*time.Second, func() bool {
		m := scrape(listen2)
		taken2 = m["sungrow_collect_readings_total"]
		return taken2 >= 4 && m[`sungrow_collect_uploads_total{status="200"}`] >= 2 &&
			m["sungrow_collect_spool_depth"] <= 1
	})
	is.NoErr(second.cmd.Process.Signal(syscall.SIGTERM))
	is.NoErr(second.wait(60 * time.Second)) // SIGTERM exits 0
	logs2 := second.logs.String()

	s, err = collect.OpenSpool(spool, 1<<20)
	is.NoErr(err)
	left := s.Depth()
	is.NoErr(s.Close())

	stored := storedTimes(t, db.URL)
	var before, after []int64
	for _, ts := range stored {
		if ts <= ts1[len(ts1)-1] {
			before = append(before, ts)
		} else {
			after = append(after, ts)
		}
	}
	// Exactly the first run's synced readings are stored for its seconds: none lost,
	// none stamped anew on the resend (that would store it twice).
	is.Equal(before, ts1)
	// The second run's readings are stored or still spooled (taken after its last
	// upload); the scrape may lag the SIGTERM by a reading or two.
	is.True(float64(len(after)+left) >= taken2)
	is.True(float64(len(after)+left) <= taken2+2)
	// The collector's own count of readings it delivered is what the server stored:
	// nothing was sent twice.
	is.Equal(uploadedInLog(t, logs2), len(stored))

	// No gap but the downtime: the last reading before the kill is at most a second
	// older than the kill, and the restart reads at once.
	var maxGap, killGap time.Duration
	for i := 1; i < len(stored); i++ {
		gap := time.Duration(stored[i]-stored[i-1]) * time.Millisecond
		maxGap = max(maxGap, gap)
		if stored[i-1] == ts1[len(ts1)-1] {
			killGap = gap
		}
	}
	t.Logf("downtime %s (kill to restart); gap across it %s; largest gap %s; stored %d (%d of the first run, %d of the second), %d left spooled",
		downtime.Round(time.Millisecond), killGap, maxGap, len(stored), len(before), len(after), left)
	is.True(killGap > 0) // the second run's readings follow the first's
	is.True(maxGap <= downtime+2*time.Second)
}

// buildSungrow builds the sungrow binary once for the test.
func buildSungrow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sungrow")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sungrow/sungrow").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// collector is `sungrow collect` running as a process of its own.
type collector struct {
	cmd    *exec.Cmd
	logs   *testenv.LogBuffer
	exited chan error
}

// startCollector starts bin with args; the token is given as the variable, as the
// README tells users to. The process is killed at the end of the test if still running.
func startCollector(t *testing.T, bin string, args ...string) *collector {
	t.Helper()
	c := &collector{cmd: exec.Command(bin, args...), logs: &testenv.LogBuffer{}, exited: make(chan error, 1)}
	c.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "COLLECT_TOKEN=" + token, "LOG_LEVEL=debug"}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start collect: %v", err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("collect (pid %d) logged:\n%s", c.cmd.Process.Pid, c.logs)
		}
	})
	return c
}

// wait returns the process's exit, failing the test if it has not exited within d.
func (c *collector) wait(d time.Duration) error {
	select {
	case err := <-c.exited:
		c.exited <- err // for the cleanup
		return err
	case <-time.After(d):
		return fmt.Errorf("collect did not exit within %s", d)
	}
}

// holdingFront fronts serve; while hold is set it takes each POST /v1/ingest and never
// answers, as a server that stored nothing yet and whose 200 is still to come.
type holdingFront struct {
	hold    atomic.Bool
	held    atomic.Int64
	release chan struct{}
	next    http.Handler
}

func (f *holdingFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.hold.Load() || r.URL.Path != "/v1/ingest" {
		f.next.ServeHTTP(w, r)
		return
	}
	// The whole body read lets the server notice the client's connection closing.
	io.Copy(io.Discard, r.Body)
	f.held.Add(1)
	select {
	case <-r.Context().Done(): // the collector was killed
	case <-f.release:
	}
}

// scrape reads the collector's /metrics as name{labels} → value; empty when it does
// not answer (yet).
func scrape(addr string) map[string]float64 {
	m := map[string]float64{}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return m
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// storedTimes are the device's stored timestamps in milliseconds, oldest first.
func storedTimes(t *testing.T, url string) []int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT ts FROM sungrow_samples WHERE device_id = 'inverter-01' ORDER BY ts")
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(all))
	for i, ts := range all {
		out[i] = ts.UnixMilli()
	}
	if !slices.IsSorted(out) {
		t.Fatal("timestamps not in order")
	}
	return out
}

// uploadedInLog sums the readings of the collector's debug "uploaded" lines.
func uploadedInLog(t *testing.T, logs string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			Readings int    `json:"readings"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "uploaded" {
			n += rec.Readings
		}
	}
	return n
}
