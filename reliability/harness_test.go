package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// server is `sungrow serve` running in this process.
type server struct {
	base string
	logs *testenv.LogBuffer
}

// startServe runs `sungrow serve` in-process with env (LISTEN_ADDR is chosen here) until
// the test ends, and waits until it answers /health.
func startServe(t *testing.T, env map[string]string) *server {
	t.Helper()
	addr := testenv.FreeAddr(t)
	full := map[string]string{"LISTEN_ADDR": addr}
	for k, v := range env {
		full[k] = v
	}
	s := &server{base: "http://" + addr, logs: &testenv.LogBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmd.Run(ctx, []string{"serve"}, func(k string) string { return full[k] }, io.Discard, s.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s of its context ending")
		}
	})
	testenv.WaitHealthy(t, s.base, done)
	return s
}

// runCmd runs one sungrow command to completion.
func runCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := cmd.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("sungrow %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// metric sums the samples of a metric whose line contains every one of the label
// fragments, from /metrics.
func metric(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// realtimeKeys counts the cached realtime answers in Redis.
func realtimeKeys(t *testing.T, r *testenv.Redis) int {
	c := r.Client()
	defer c.Close()
	keys, err := c.Keys(context.Background(), "realtime:*").Result()
	if err != nil {
		return 0
	}
	return len(keys)
}

// postgresServer is a PostgreSQL instance of the test's own: its data directory in a
// temporary directory, listening on a free port, run as the postgres user, so the test
// may crash and restart it without touching the shared instance.
type postgresServer struct {
	bin, dir, data, port string
}

func startPostgres(t *testing.T) *postgresServer {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Skip("pg_config is not installed")
	}
	p := &postgresServer{bin: strings.TrimSpace(string(out)), port: testenv.FreePort(t)}
	dir, err := os.MkdirTemp("", "sungrow-reliability-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir, p.data = dir, filepath.Join(dir, "data")
	t.Cleanup(func() {
		_ = p.ctl("stop", "-m", "immediate").Run()
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := p.command(filepath.Join(p.bin, "initdb"), "-D", p.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start(t)
	conn, err := pgx.Connect(context.Background(), p.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE sungrow"); err != nil {
		t.Fatal(err)
	}
	return p
}

// command runs a PostgreSQL program as the postgres user when this process is root
// (PostgreSQL refuses to run as root).
func (p *postgresServer) command(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

func (p *postgresServer) ctl(args ...string) *exec.Cmd {
	return p.command(append([]string{filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-w", "-t", "60"}, args...)...)
}

func (p *postgresServer) start(t *testing.T) {
	t.Helper()
	c := p.ctl("start", "-l", filepath.Join(p.dir, "log"),
		"-o", fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1", p.port, p.dir))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

// crash stops PostgreSQL the hard way (no checkpoint, every session cut), like a
// power cut of the database host; its next start recovers from the WAL.
func (p *postgresServer) crash(t *testing.T) {
	t.Helper()
	if out, err := p.ctl("stop", "-m", "immediate").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (p *postgresServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable", p.port, db)
}
