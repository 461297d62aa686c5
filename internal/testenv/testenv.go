// Package testenv gives each test its own database on the machine's real services: a
// fresh database on PostgreSQL, or a fresh schema on the TimescaleDB test server
// (tsdb/server.mjs, started once per test binary), migrated and cleaned up afterwards;
// and the few helpers tests of several packages need (a Redis, a PostgreSQL and a
// Mosquitto of the test's own, free addresses, waiting for health, the pinned instants
// calendar tests run at). It is shared by the tests of every package, which is why it is a package.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sungrow/sungrow/db"
	sungrowsql "github.com/sungrow/sungrow/sql"
)

// DB is one test's own database.
type DB struct {
	// URL connects to this database only (for TimescaleDB: its schema, one connection).
	URL string
	// Pool is open on URL. Close it before handing URL to code that opens its own
	// connection to TimescaleDB: that server serves one connection at a time.
	Pool      *pgxpool.Pool
	Timescale bool
}

// Backend names the two database kinds sungrow runs on.
type Backend string

const (
	Postgres    Backend = "postgres"
	TimescaleDB Backend = "timescaledb"
)

// Backends is every backend, for tests that must hold on both.
var Backends = []Backend{Postgres, TimescaleDB}

// New returns a fresh, migrated database on the backend.
func New(t testing.TB, b Backend) *DB {
	t.Helper()
	d := NewEmpty(t, b)
	Migrate(t, d.Pool)
	return d
}

// NewEmpty returns a fresh database on the backend with no schema.
func NewEmpty(t testing.TB, b Backend) *DB {
	t.Helper()
	if b == TimescaleDB {
		return newTimescale(t)
	}
	return newPostgres(t)
}

// NewInZone returns a fresh database on the backend migrated with SUNGROW_TZ zone, as
// `sungrow migrate` does it, so on TimescaleDB the daily and monthly aggregates begin
// their days there.
func NewInZone(t testing.TB, b Backend, zone string) *DB {
	t.Helper()
	ctx := context.Background()
	d := NewEmpty(t, b)
	// Migration 2 reads the zone from sungrow.tz. The test server keeps session
	// settings across connections: reset it.
	q := db.New(d.Pool)
	if err := q.SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: zone}); err != nil {
		t.Fatalf("set sungrow.tz: %v", err)
	}
	Migrate(t, d.Pool)
	if err := q.SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: ""}); err != nil {
		t.Fatalf("reset sungrow.tz: %v", err)
	}
	return d
}

// ForEach runs fn as a subtest on a fresh, migrated database of each backend.
func ForEach(t *testing.T, fn func(t *testing.T, d *DB)) {
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			fn(t, New(t, b))
		})
	}
}

// Migrate applies every migration.
func Migrate(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := sungrowsql.NewMigrator(sqlDB)
	if err != nil {
		t.Fatalf("migrator: %v", err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
}

// AdminURL is the PostgreSQL database tests create their databases from.
func AdminURL() string {
	if u := os.Getenv("SUNGROW_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Redis is the Redis URL for tests; keys are per device and tests use unique devices.
func RedisURL() string {
	if u := os.Getenv("SUNGROW_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// UniqueName returns a name no other test uses, safe as an SQL identifier.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func newPostgres(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to PostgreSQL at %s (set SUNGROW_TEST_DATABASE_URL): %v", AdminURL(), err)
	}
	defer admin.Close(ctx)
	name := UniqueName("sungrow_test")
	// The harness's DDL is the one SQL outside .sql files: a database or schema name is
	// an identifier, which no bind parameter (and so no sqlc query) can carry. The
	// names come from UniqueName, never from input.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("parse admin URL: %v", err)
	}
	u.Path = "/" + name
	d := &DB{URL: u.String()}
	d.Pool = openPool(t, d.URL)
	t.Cleanup(func() {
		d.Pool.Close()
		admin, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return d
}

// The TimescaleDB test server has one backend, so its tests take turns.
var (
	timescaleTurn  sync.Mutex
	timescaleOnce  sync.Once
	timescaleURL   string
	timescaleError error
	// timescaleStdin keeps the server's stdin open for as long as this process lives.
	timescaleStdin io.WriteCloser
)

func newTimescale(t testing.TB) *DB {
	t.Helper()
	timescaleOnce.Do(func() { timescaleURL, timescaleError = startTimescale() })
	if timescaleError != nil {
		if os.Getenv("CI") != "" || os.Getenv("SUNGROW_REQUIRE_TIMESCALE") != "" {
			t.Fatalf("TimescaleDB test server: %v", timescaleError)
		}
		t.Skipf("TimescaleDB test server unavailable (run `npm ci --prefix tsdb`): %v", timescaleError)
	}
	timescaleTurn.Lock()
	schema := UniqueName("t")
	u, _ := url.Parse(timescaleURL)
	q := u.Query()
	q.Set("pool_max_conns", "1")
	// Prepared statements outlive connections on a server with a single backend, so
	// pgx's named statement cache would collide with the previous connection's.
	q.Set("default_query_exec_mode", "cache_describe")
	q.Set("search_path", schema+",public")
	u.RawQuery = q.Encode()
	d := &DB{URL: u.String(), Timescale: true}
	d.Pool = openPool(t, d.URL)
	if _, err := d.Pool.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		timescaleTurn.Unlock()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer timescaleTurn.Unlock()
		d.Pool.Close()
		conn, err := pgx.Connect(context.Background(), timescaleURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return d
}

// openPool opens a pool the way sungrow does, search_path included.
func openPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" {
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			return db.New(conn).SetSearchPath(ctx, sp)
		}
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	return pool
}

// startTimescale uses SUNGROW_TEST_TIMESCALE_URL when set, else starts
// tsdb/server.mjs for this test binary; the server exits when the binary does.
func startTimescale() (string, error) {
	if u := os.Getenv("SUNGROW_TEST_TIMESCALE_URL"); u != "" {
		return u, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "tsdb", "server.mjs")
	if _, err := os.Stat(filepath.Join(root, "tsdb", "node_modules")); err != nil {
		return "", fmt.Errorf("tsdb/node_modules is missing: %w", err)
	}
	cmd := exec.Command("node", script, "0")
	// The server exits when its stdin closes, i.e. when this process ends however it ends.
	if timescaleStdin, err = cmd.StdinPipe(); err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start node %s: %w", script, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				ready <- port
			}
		}
	}()
	select {
	case port := <-ready:
		return fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%s/postgres?sslmode=disable&default_query_exec_mode=cache_describe", port), nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("%s did not start within 60 s", script)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// MaterializationTable names (quoted, schema-qualified) the hypertable that holds a
// continuous aggregate's materialized rows, so a test can look past the view, which
// answers through real-time aggregation anyway.
func MaterializationTable(t testing.TB, pool *pgxpool.Pool, view string) string {
	t.Helper()
	var schema, table string
	err := pool.QueryRow(context.Background(), `SELECT materialization_hypertable_schema, materialization_hypertable_name
		FROM timescaledb_information.continuous_aggregates
		WHERE view_name = $1 AND view_schema = current_schema()`, view).Scan(&schema, &table)
	if err != nil {
		t.Fatalf("find the materialization of %s: %v", view, err)
	}
	return pgx.Identifier{schema, table}.Sanitize()
}

// MaterializedSamples sums sample_count in the materialization hypertable behind view
// over buckets in [from, to), of device or, if it is empty, of every device: what the
// continuous aggregate holds without real-time aggregation.
func MaterializedSamples(t testing.TB, pool *pgxpool.Pool, view, device string, from, to time.Time) int64 {
	t.Helper()
	var n int64
	err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(sample_count), 0)::bigint FROM `+
		MaterializationTable(t, pool, view)+` WHERE bucket >= $1 AND bucket < $2 AND ($3 = '' OR device_id = $3)`,
		from, to, device).Scan(&n)
	if err != nil {
		t.Fatalf("count the materialized samples of %s: %v", view, err)
	}
	return n
}

// DeleteMaterialized deletes view's materialized rows of bucket, as
// timescale/timescaledb#10296 loses a zone bucket, so a test can show the check sees it.
func DeleteMaterialized(t testing.TB, pool *pgxpool.Pool, view string, bucket time.Time) {
	t.Helper()
	tag, err := pool.Exec(context.Background(), "DELETE FROM "+MaterializationTable(t, pool, view)+" WHERE bucket = $1", bucket)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("delete %s's bucket %s: %v (%d rows)", view, bucket, err, tag.RowsAffected())
	}
}

// InflateMaterialized adds by to the sample_count of view's materialized rows of
// bucket: a stale bucket that looks right.
func InflateMaterialized(t testing.TB, pool *pgxpool.Pool, view string, bucket time.Time, by int64) {
	t.Helper()
	tag, err := pool.Exec(context.Background(), "UPDATE "+MaterializationTable(t, pool, view)+
		" SET sample_count = sample_count + $2 WHERE bucket = $1", bucket, by)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("inflate %s's bucket %s: %v (%d rows)", view, bucket, err, tag.RowsAffected())
	}
}
