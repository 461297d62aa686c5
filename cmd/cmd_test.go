package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// run runs the sungrow command line with the given environment.
func run(ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = cmd.Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// schemaOf describes the columns, indexes and hypertable status of sungrow_samples in
// the current schema, to compare schemas before and after.
func schemaOf(t *testing.T, url string) string {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var desc string
	err = pool.QueryRow(context.Background(), `
		SELECT coalesce(string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, ''), ', ' ORDER BY ordinal_position), '')
		  || ' | ' || (SELECT coalesce(string_agg(indexdef, ', ' ORDER BY indexname), '') FROM pg_indexes
		               WHERE tablename = 'sungrow_samples' AND schemaname = current_schema())
		FROM information_schema.columns
		WHERE table_name = 'sungrow_samples' AND table_schema = current_schema()`).Scan(&desc)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

func TestMigrate(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.NewEmpty(t, b)
			d.Pool.Close() // the command opens its own connection
			env := map[string]string{"DATABASE_URL": d.URL}

			out, _, err := run(ctx, env, "migrate", "status")
			is.NoErr(err)
			is.True(strings.Contains(out, "00001_samples.sql"))
			is.True(strings.Contains(out, "pending"))

			out, _, err = run(ctx, env, "migrate", "up")
			is.NoErr(err)
			is.True(strings.Contains(out, "applied 00001_samples.sql"))
			applied := schemaOf(t, d.URL)
			is.True(strings.Contains(applied, "ts timestamp with time zone NO"))

			out, _, err = run(ctx, env, "migrate", "up") // the second time changes nothing
			is.NoErr(err)
			is.True(strings.Contains(out, "up to date"))
			is.True(!strings.Contains(out, "applied"))
			is.Equal(schemaOf(t, d.URL), applied)

			out, _, err = run(ctx, env, "migrate", "status")
			is.NoErr(err)
			is.True(!strings.Contains(out, "pending"))

			out, _, err = run(ctx, env, "migrate", "version")
			is.NoErr(err)
			version := strings.TrimSpace(out)
			is.True(version != "0")

			// Down all the way, then up again, restores the same schema.
			for range 20 {
				out, _, err = run(ctx, env, "migrate", "down")
				is.NoErr(err)
				if strings.Contains(out, "nothing to roll back") {
					break
				}
			}
			is.Equal(schemaOf(t, d.URL), " | ") // no table left
			_, _, err = run(ctx, env, "migrate", "up")
			is.NoErr(err)
			is.Equal(schemaOf(t, d.URL), applied)
			out, _, err = run(ctx, env, "migrate", "version")
			is.NoErr(err)
			is.Equal(strings.TrimSpace(out), version)

			if b == testenv.TimescaleDB {
				pool, err := pgxpool.New(ctx, d.URL)
				is.NoErr(err)
				defer pool.Close()
				var interval time.Duration
				err = pool.QueryRow(ctx, `
					SELECT time_interval FROM timescaledb_information.dimensions
					WHERE hypertable_schema = current_schema() AND hypertable_name = 'sungrow_samples'
					  AND column_name = 'ts'`).Scan(&interval)
				is.NoErr(err)                      // sungrow_samples is a hypertable on ts
				is.Equal(interval, 7*24*time.Hour) // with 7-day chunks
			}
		})
	}
}

func TestServeRefusesPendingMigrations(t *testing.T) {
	is := is.New(t)
	d := testenv.NewEmpty(t, testenv.Postgres)
	_, _, err := run(context.Background(), map[string]string{
		"DATABASE_URL":  d.URL,
		"DEVICE_TOKENS": "tok:inverter-01",
		"LISTEN_ADDR":   "127.0.0.1:0",
	}, "serve")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "sungrow migrate up"))
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	base := map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": "secret-token:inverter-01", "LISTEN_ADDR": "127.0.0.1:0"}
	tests := []struct {
		name, key, value, want string
	}{
		{"bad max bytes", "MAX_REQUEST_BYTES", "lots", "MAX_REQUEST_BYTES"},
		{"zero max samples", "MAX_SAMPLES_PER_REQUEST", "0", "MAX_SAMPLES_PER_REQUEST"},
		{"negative ttl", "CACHE_TTL_S", "-1", "CACHE_TTL_S"},
		{"device id with braces", "DEVICE_TOKENS", "secret-token:dev{1}", "DEVICE_TOKENS"},
		{"token without device", "DEVICE_TOKENS", "secret-token", "DEVICE_TOKENS"},
		{"no database", "DATABASE_URL", "", "DATABASE_URL"},
		{"bad log level", "LOG_LEVEL", "loud", "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tt.key] = tt.value
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, stderr, err := run(ctx, env, "serve")
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tt.want))
			is.True(!strings.Contains(err.Error()+stderr, "secret-token")) // tokens never shown
		})
	}
}

func TestMigrateNeedsOnlyTheDatabase(t *testing.T) {
	is := is.New(t)
	d := testenv.NewEmpty(t, testenv.Postgres)
	// No DEVICE_TOKENS: migrate does not need them.
	_, _, err := run(context.Background(), map[string]string{"DATABASE_URL": d.URL}, "migrate", "up")
	is.NoErr(err)
}

func TestServeServesAndShutsDownCleanly(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, map[string]string{
			"DATABASE_URL":  d.URL,
			"DEVICE_TOKENS": "tok:inverter-01",
			"LISTEN_ADDR":   addr,
		}, "serve")
		done <- err
	}()
	testenv.WaitHealthy(t, "http://"+addr, nil)

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/ingest", strings.NewReader(
		`{"samples":[{"device_id":"inverter-01","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)

	cancel()
	select {
	case err := <-done:
		is.NoErr(err) // a clean shutdown is not an error
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
}

func TestConcurrentMigrateUpDoesNotCollide(t *testing.T) {
	is := is.New(t)
	d := testenv.NewEmpty(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, _, err := run(context.Background(), env, "migrate", "up")
			errs <- err
		}()
	}
	for range 4 {
		is.NoErr(<-errs) // each waits for the lock, then finds nothing (or everything) to do
	}
	out, _, err := run(context.Background(), env, "migrate", "status")
	is.NoErr(err)
	is.True(!strings.Contains(out, "pending"))
}

func TestServeDrainsInFlightRequestsOnShutdown(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, map[string]string{
			"DATABASE_URL": d.URL, "DEVICE_TOKENS": "tok:inverter-01", "LISTEN_ADDR": addr,
		}, "serve")
		done <- err
	}()
	testenv.WaitHealthy(t, "http://"+addr, nil)

	// A client starts an ingest and is still sending its body when SIGTERM arrives. It
	// speaks HTTP on its own connection, so no idle keep-alive connection is reused.
	first := `{"samples":[{"device_id":"inverter-01","ts":"2026-01-01T00:00:00Z",`
	rest := `"pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`
	conn, err := net.Dial("tcp", addr)
	is.NoErr(err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/ingest HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer tok\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		addr, len(first)+len(rest), first)
	is.NoErr(err)
	// The server is inside the handler once /metrics counts two requests in flight:
	// the ingest and the scrape itself.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(scrape(t, addr), "sungrow_http_requests_in_flight 2"); {
		if time.Now().After(deadline) {
			t.Fatal("the ingest never reached the handler")
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel() // what SIGTERM does through main's signal.NotifyContext
	// Shutdown has begun once new connections are refused.
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve kept accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}

	_, err = conn.Write([]byte(rest))
	is.NoErr(err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	is.NoErr(err)
	defer res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // the in-flight request was finished, not cut
	select {
	case err := <-done:
		is.NoErr(err) // and serve exited cleanly
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after draining")
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestReadyReportsEachDependency(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	for _, tt := range []struct {
		name, redisURL string
		status         int
		detail         string
	}{
		{"redis up", testenv.RedisURL(), http.StatusOK, ""},
		{"redis down", "redis://127.0.0.1:1/0", http.StatusServiceUnavailable, "redis"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			addr := testenv.FreeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, _, err := run(ctx, map[string]string{
					"DATABASE_URL": d.URL, "DEVICE_TOKENS": "tok:inverter-01", "LISTEN_ADDR": addr,
					"REDIS_URL": tt.redisURL,
				}, "serve")
				done <- err
			}()
			defer func() { cancel(); <-done }()
			testenv.WaitHealthy(t, "http://"+addr, nil)
			res, err := http.Get("http://" + addr + "/ready")
			is.NoErr(err)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			is.Equal(res.StatusCode, tt.status)
			is.True(strings.Contains(string(body), `"database":"ok"`))
			if tt.detail != "" {
				is.True(strings.Contains(string(body), "not ready: "+tt.detail))
			}
		})
	}
}
