package reliability_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/loadtest"
)

// procKB reads a field such as VmRSS or VmHWM (in kB) of a process from /proc.
func procKB(pid int, field string) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// TestLong is the long form: the full load (50 devices every 5 s in batches,
// 500 realtime and 20 series reads a second) for 60 s against the sungrow binary as
// its own process, with Redis stopped for 10 s and PostgreSQL crashed and restarted
// while it runs. Run it with scripts/reliability (SUNGROW_LONG=1).
func TestLong(t *testing.T) {
	if os.Getenv("SUNGROW_LONG") == "" {
		t.Skip("the long form runs with SUNGROW_LONG=1 (scripts/reliability)")
	}
	is := is.New(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "sungrow")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sungrow/sungrow").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pg := testenv.StartPostgres(t)
	rs := testenv.StartRedis(t)
	devices := loadtest.GeneratedDevices(50, "long")
	env := map[string]string{"DATABASE_URL": pg.URL("sungrow")}
	runCmd(t, env, "migrate", "up")

	addr := testenv.FreeAddr(t)
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	is.NoErr(err)
	defer logFile.Close()
	serve := exec.Command(bin, "serve")
	serve.Env = append(os.Environ(), "DATABASE_URL="+pg.URL("sungrow"), "REDIS_URL="+rs.URL,
		"DEVICE_TOKENS="+loadtest.DeviceTokens(devices), "LISTEN_ADDR="+addr)
	serve.Stdout, serve.Stderr = logFile, logFile
	is.NoErr(serve.Start())
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = serve.Process.Kill()
		}
	})
	base := "http://" + addr
	testenv.WaitHealthy(t, base, exited)
	pid := serve.Process.Pid

	// The server's resident memory, sampled while the load runs.
	var rssMu sync.Mutex
	var rss []int64
	stopSampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(500 * time.Millisecond):
				rssMu.Lock()
				rss = append(rss, procKB(pid, "VmRSS"))
				rssMu.Unlock()
			}
		}
	}()

	cfg := loadtest.Defaults()
	cfg.BaseURL, cfg.Devices, cfg.Seed = base, devices, 42
	r, err := loadtest.New(cfg)
	is.NoErr(err)
	done := make(chan loadtest.Report, 1)
	go func() { done <- r.Run(context.Background()) }()
	began := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(began.Add(d))) } // the script of the run

	r.Phase("baseline")
	at(15 * time.Second)
	r.Phase("redis down")
	endRedis := r.Fault("redis stopped", false) // the cache must hide it: no 5xx expected
	rs.Stop()
	at(25 * time.Second)
	rs.Start(t)
	endRedis()
	r.Phase("after redis")
	testenv.Await(t, "caching to resume in the restarted Redis", 20*time.Second, func() bool { return realtimeKeys(t, rs) > 0 })
	at(35 * time.Second)
	r.Phase("postgres down")
	endPG := r.Fault("postgres crash", true)
	pg.Crash(t)
	at(40 * time.Second)
	pg.Start(t)
	endPG()
	r.Phase("after postgres")

	rep := <-done
	close(stopSampling)
	hwm := procKB(pid, "VmHWM")
	rssMu.Lock()
	var peak, last int64
	for _, v := range rss {
		peak = max(peak, v)
	}
	if len(rss) > 0 {
		last = rss[len(rss)-1]
	}
	rssMu.Unlock()

	pool, err := pgxpool.New(context.Background(), pg.URL("sungrow"))
	is.NoErr(err)
	defer pool.Close()
	v, err := loadtest.Verify(context.Background(), pool, rep.Acked)
	is.NoErr(err)
	logs, _ := os.ReadFile(logPath)
	failed := 0
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, `"msg":"request failed"`) && !strings.Contains(l, `"status":503`) {
			failed++
			t.Log(l)
		}
	}
	t.Logf("\n%s%s\nserver memory: peak RSS (VmHWM) %d MiB, highest sampled VmRSS %d MiB, VmRSS at the end %d MiB; server 5xx other than 503: %d",
		rep.String(), v.String(), hwm>>10, peak>>10, last>>10, failed)

	is.Equal(rep.Unexpected(), int64(0)) // no 5xx outside the PostgreSQL crash, no batch lost
	is.True(v.OK() && v.Acked > 0)       // every acknowledged sample stored exactly once
	is.Equal(failed, 0)                  // and nothing but 503 while the database was away
	is.True(rep.Endpoint("ingest").Expected["postgres crash"] > 0)
	is.True(hwm < 512<<10) // bounded memory: far below what an unbounded queue would reach
}
