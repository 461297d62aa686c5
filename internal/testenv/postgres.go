package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is a PostgreSQL instance of the test's own: its data directory in a
// temporary directory, listening on a free port, run as the postgres user, so the test
// may crash and restart it without touching the shared instance.
type PostgresServer struct {
	Port           string
	bin, dir, data string
	settings       []string // -c name=value, on every start
}

// StartPostgres initdbs and starts a PostgreSQL with a database "sungrow" in it, and
// removes it when the test ends; tests skip where PostgreSQL is not installed.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Skip("pg_config is not installed")
	}
	p := newPostgresServer(t, strings.TrimSpace(string(out)))
	initdb := p.command(filepath.Join(p.bin, "initdb"), "-D", p.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start(t)
	conn, err := pgx.Connect(context.Background(), p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE sungrow"); err != nil {
		t.Fatal(err)
	}
	return p
}

// newPostgresServer makes the temporary directory of a server (owned by postgres when
// this process is root) and removes it, the server stopped, when the test ends.
func newPostgresServer(t testing.TB, bin string) *PostgresServer {
	t.Helper()
	p := &PostgresServer{bin: bin, Port: FreePort(t)}
	dir, err := os.MkdirTemp("", "sungrow-test-pg-")
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
	return p
}

// StartStandby makes a streaming replica of primary (pg_basebackup -R: a hot standby
// that follows it), with every statement it runs in its log (Log), starts it on a
// port of its own and waits until it accepts connections.
func (p *PostgresServer) StartStandby(t testing.TB) *PostgresServer {
	t.Helper()
	s := newPostgresServer(t, p.bin)
	s.settings = []string{"log_statement=all", "hot_standby=on"}
	backup := s.command(filepath.Join(p.bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", p.Port, "-U", "postgres",
		"-D", s.data, "-R", "-X", "stream", "--no-sync", "-c", "fast")
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	s.Start(t)
	return s
}

// Stop shuts the server down cleanly (sessions cut, as when an operator stops it).
func (p *PostgresServer) Stop(t testing.TB) {
	t.Helper()
	if out, err := p.ctl("stop", "-m", "fast").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Log is the server's log so far (with log_statement=all, every statement it ran).
func (p *PostgresServer) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// command runs a PostgreSQL program as the postgres user when this process is root
// (PostgreSQL refuses to run as root).
func (p *PostgresServer) command(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

func (p *PostgresServer) ctl(args ...string) *exec.Cmd {
	return p.command(append([]string{filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-w", "-t", "60"}, args...)...)
}

// Start starts the server (again, after Crash) and waits until it accepts connections.
func (p *PostgresServer) Start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1", p.Port, p.dir)
	for _, s := range p.settings {
		opts += " -c " + s
	}
	c := p.ctl("start", "-l", filepath.Join(p.dir, "log"), "-o", opts)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

// Crash stops PostgreSQL the hard way (no checkpoint, every session cut), like a
// power cut of the database host; its next start recovers from the WAL.
func (p *PostgresServer) Crash(t testing.TB) {
	t.Helper()
	if out, err := p.ctl("stop", "-m", "immediate").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// URL connects to database db of the server.
func (p *PostgresServer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable", p.Port, db)
}
