package cmd_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
	"github.com/sungrow/sungrow/series"
)

// instance is one `sungrow serve` running in this process until the test ends.
type instance struct{ *testserve.Serve }

func startServe(t *testing.T, env map[string]string) *instance {
	return &instance{testserve.StartServe(t, env)}
}

// status is the answer of GET path with a bearer token.
func (s *instance) status(t *testing.T, path, token string) int {
	t.Helper()
	status, _ := s.get(t, path, token)
	return status
}

// get is GET path with a bearer token (none if empty): the status and the body.
func (s *instance) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// within5s waits for every instance to answer GET /v1/me with the token with want: the
// issue's bound for a change to reach every instance (serve polls once a second).
func within5s(t *testing.T, what string, token string, want int, instances ...*instance) {
	t.Helper()
	began := time.Now()
	testenv.Await(t, what, 5*time.Second, func() bool {
		for _, s := range instances {
			if s.status(t, "/v1/me", token) != want {
				return false
			}
		}
		return true
	})
	t.Logf("%s: on every instance after %s", what, time.Since(began).Round(time.Millisecond))
}

// cli runs a sungrow command that must succeed; its stderr is kept for the log scan.
type cli struct {
	t      *testing.T
	env    map[string]string
	stderr strings.Builder
}

func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, errOut, err := run(context.Background(), c.env, args...)
	c.stderr.WriteString(errOut)
	if err != nil {
		c.t.Fatalf("sungrow %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

type issued struct {
	ID    int64  `json:"id"`
	Token string `json:"token"`
}

func (c *cli) deviceAdd(args ...string) issued {
	c.t.Helper()
	var res struct {
		Token issued `json:"token"`
	}
	if err := json.Unmarshal([]byte(c.run(append([]string{"device", "add", "--json"}, args...)...)), &res); err != nil {
		c.t.Fatal(err)
	}
	return res.Token
}

func (c *cli) tokenAdd(args ...string) issued {
	c.t.Helper()
	var res issued
	if err := json.Unmarshal([]byte(c.run(append([]string{"token", "add", "--json"}, args...)...)), &res); err != nil {
		c.t.Fatal(err)
	}
	return res
}

// tablesHolding names every table of the database any of whose rows holds needle in
// any column, as text or as the hex of a bytea: every column of every table, the
// TimescaleDB catalog included.
func tablesHolding(t *testing.T, pool *pgxpool.Pool, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var holding []string
	for _, table := range tables {
		var n int
		// The names come from pg_tables, quoted: no input reaches this statement.
		err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` x
			WHERE strpos(x::text, $1) > 0 OR strpos(x::text, $2) > 0`, needle, hex.EncodeToString([]byte(needle))).Scan(&n)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		if n > 0 {
			holding = append(holding, table)
		}
	}
	return holding
}

func TestDevicesAndTokensReachEveryInstance(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL, "LOG_LEVEL": "debug"}
	a, b := startServe(t, env), startServe(t, env) // no DEVICE_TOKENS: they start anyway
	c := &cli{t: t, env: env}

	// No token anywhere: ready says so.
	res, err := http.Get(a.Base + "/ready")
	is.NoErr(err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)
	is.True(strings.Contains(string(body), "nothing can authenticate"))
	is.True(strings.Contains(a.Logs.String(), "nothing can authenticate")) // and serve warned

	first := c.deviceAdd("inverter-a", "--name", "House", "--interval", "5s")
	is.True(strings.HasPrefix(first.Token, "sg_"))
	within5s(t, "a device added by the command authenticates", first.Token, http.StatusOK, a, b)
	is.Equal(a.status(t, "/ready", ""), http.StatusOK)

	// Samples through the first instance.
	req, _ := http.NewRequest(http.MethodPost, a.Base+"/v1/ingest", strings.NewReader(
		`{"samples":[{"device_id":"inverter-a","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0},`+
			`{"device_id":"inverter-a","ts":"2026-01-01T00:00:05Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	req.Header.Set("Authorization", "Bearer "+first.Token)
	res, err = http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)

	// Rotation: a second token, then the first revoked.
	second := c.tokenAdd("inverter-a", "--label", "spare")
	within5s(t, "a second token authenticates", second.Token, http.StatusOK, a, b)
	c.run("token", "revoke", fmt.Sprint(first.ID))
	within5s(t, "a revoked token is refused", first.Token, http.StatusUnauthorized, a, b)
	is.Equal(a.status(t, "/v1/me", second.Token), http.StatusOK) // the other token still works
	is.Equal(b.status(t, "/v1/me", second.Token), http.StatusOK)

	list := c.run("device", "list")
	is.True(strings.Contains(list, "inverter-a"))
	is.True(strings.Contains(list, "2026-01-01T00:00:05Z")) // newest sample
	tokens := c.run("token", "list", "inverter-a")
	is.True(strings.Contains(tokens, "spare"))
	is.True(strings.Contains(tokens, "revoked"))

	// Removed: every token refused everywhere, the samples kept.
	third := c.tokenAdd("inverter-a")
	within5s(t, "a third token authenticates", third.Token, http.StatusOK, a, b)
	c.run("device", "remove", "inverter-a")
	within5s(t, "the second token of a removed device is refused", second.Token, http.StatusUnauthorized, a, b)
	within5s(t, "the third token of a removed device is refused", third.Token, http.StatusUnauthorized, a, b)
	var samples int
	is.NoErr(d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sungrow_samples WHERE device_id = 'inverter-a'`).Scan(&samples))
	is.Equal(samples, 2)

	// No table holds a token's text; the scan does find what is stored (its hash).
	for _, tok := range []issued{first, second, third} {
		is.Equal(tablesHolding(t, d.Pool, tok.Token), []string(nil))
	}
	is.Equal(len(tablesHolding(t, d.Pool, "inverter-a")), 5) // samples, the rollup's quarter hours and days, devices, tokens

	// No token in any log line, at debug level, nor in the commands' diagnostics.
	logs := a.Logs.String() + b.Logs.String() + c.stderr.String()
	is.True(strings.Count(logs, `"msg":"request"`) > 10)
	for _, tok := range []issued{first, second, third} {
		is.True(!strings.Contains(logs, tok.Token))
		is.True(!strings.Contains(logs, tok.Token[len(tok.Token)-16:]))
	}
}

func TestDeviceTokensAloneStillWork(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": "env-secret-a:inverter-a,env-secret-b:inverter-b"}
	s := startServe(t, env)
	is.Equal(s.status(t, "/v1/me", "env-secret-a"), http.StatusOK)
	is.Equal(s.status(t, "/v1/me", "env-secret-b"), http.StatusOK)
	is.Equal(s.status(t, "/v1/me", "env-secret-c"), http.StatusUnauthorized)
	is.Equal(s.status(t, "/ready", ""), http.StatusOK)

	c := &cli{t: t, env: env}
	out := c.run("token", "list")
	is.True(strings.Contains(out, "inverter-a"))
	is.True(strings.Contains(out, "DEVICE_TOKENS"))
	is.True(!strings.Contains(out, "env-secret")) // never the secret

	// The table wins for a device it defines: its DEVICE_TOKENS entry stops working.
	tok := c.deviceAdd("inverter-b")
	is.True(strings.Contains(c.stderr.String(), "DEVICE_TOKENS names inverter-b too"))
	within5s(t, "the table's token for inverter-b", tok.Token, http.StatusOK, s)
	within5s(t, "DEVICE_TOKENS' token for inverter-b", "env-secret-b", http.StatusUnauthorized, s)
	is.Equal(s.status(t, "/v1/me", "env-secret-a"), http.StatusOK)
	out = c.run("token", "list", "inverter-b", "--json")
	var list []struct {
		Source, State string
	}
	is.NoErr(json.Unmarshal([]byte(out), &list))
	is.Equal(len(list), 2)
	is.Equal(list[1].Source, "DEVICE_TOKENS")
	is.Equal(list[1].State, "ignored")
}

func TestDeviceCommandsRefuseBadInput(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL}
	c := &cli{t: t, env: env}
	tok := c.deviceAdd("inverter-a")
	c.deviceAdd("gone")
	c.run("device", "remove", "gone")
	c.run("simulate", "--device", "inverter-a", "--days", "0.01", "--end", "2026-01-01T00:00:00Z")

	// Everything the tables say, to compare before and after.
	state := func() string {
		var s string
		err := d.Pool.QueryRow(context.Background(), `SELECT
			(SELECT version FROM sungrow_auth_version)::text || ' | ' ||
			(SELECT count(*) FROM sungrow_samples)::text || ' | ' ||
			(SELECT string_agg(x::text, ';' ORDER BY id) FROM sungrow_devices x) || ' | ' ||
			(SELECT string_agg(x::text, ';' ORDER BY id) FROM sungrow_tokens x)`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := state()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"device", "add", "inverter-a"}, "device exists already: inverter-a"},
		{[]string{"device", "add", ""}, "may not be empty"},
		{[]string{"device", "add", "a{b}"}, "may not contain { or }"},
		{[]string{"device", "add", " a"}, "white space"},
		{[]string{"device", "add", "b", "--interval", "0s"}, "--interval"},
		{[]string{"device", "add", "b", "--interval", "2h"}, "--interval"},
		{[]string{"device", "add", "b", "--interval", "2.5s"}, "whole seconds"},
		{[]string{"device", "add"}, "accepts 1 arg"},
		{[]string{"device", "remove", "nope"}, `no such device: "nope"`},
		{[]string{"device", "remove", "gone"}, `no such device: "gone"`},
		{[]string{"device", "remove", "inverter-a", "--delete-data"}, "add --yes"},
		{[]string{"device", "remove", "inverter-a", "--yes"}, "--delete-data"},
		{[]string{"token", "add", "nope"}, `no such device: "nope"`},
		{[]string{"token", "add", "gone"}, `no such device: "gone"`},
		{[]string{"token", "list", "nope"}, `no such device: "nope"`},
		{[]string{"token", "revoke", fmt.Sprint(tok.ID + 100)}, "no such token"},
		{[]string{"token", "revoke", "abc"}, "no such token"},
		{[]string{"token", "revoke", "0"}, "no such token"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			is := is.New(t)
			stdout, stderr, err := run(context.Background(), env, tc.args...)
			is.True(err != nil) // exits non-zero
			t.Log(err)
			is.True(strings.Contains(err.Error(), tc.want))
			is.True(!strings.Contains(stdout+stderr, "sg_")) // no token was issued
			is.Equal(state(), before)                        // and nothing changed
		})
	}
}

func TestDeviceRemoveDeleteData(t *testing.T) {
	for _, backend := range testenv.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.New(t, backend)
			d.Pool.Close() // the commands open their own connection
			env := map[string]string{"DATABASE_URL": d.URL}
			c := &cli{t: t, env: env}
			c.deviceAdd("inverter-a")
			c.deviceAdd("inverter-b")
			for _, dev := range []string{"inverter-a", "inverter-b"} {
				c.run("simulate", "--device", dev, "--days", "0.5", "--end", "2026-01-01T00:00:00Z")
			}
			c.run("refresh")
			// Money kept for a day of each (as serve's keeper would): only inverter-a's goes.
			keep, err := pgxpool.New(ctx, d.URL)
			is.NoErr(err)
			_, err = keep.Exec(ctx, `INSERT INTO sungrow_money_daily SELECT device, '2025-12-31T00:00:00Z', 'UTC', 1,
				8640, 12, 0, 0, 1.5, 0.5, 2.5 FROM unnest(ARRAY['inverter-a', 'inverter-b']) AS device`)
			is.NoErr(err)
			keep.Close()

			out := c.run("device", "remove", "inverter-a", "--delete-data", "--yes", "--json")
			var res struct {
				RevokedTokens  int64 `json:"revoked_tokens"`
				DeletedSamples int64 `json:"deleted_samples"`
			}
			is.NoErr(json.Unmarshal([]byte(out), &res)) // the refresh's progress did not break the JSON
			is.Equal(res.RevokedTokens, int64(1))
			is.Equal(res.DeletedSamples, int64(8640)) // half a day at 5 s

			pool, err := pgxpool.New(ctx, d.URL)
			is.NoErr(err)
			defer pool.Close()
			var a, b int
			is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE device_id = 'inverter-a'),
				count(*) FILTER (WHERE device_id = 'inverter-b') FROM sungrow_samples`).Scan(&a, &b))
			is.Equal(a, 0)
			is.Equal(b, 8640) // the other device's samples stay
			is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE device_id = 'inverter-a'),
				count(*) FILTER (WHERE device_id = 'inverter-b') FROM sungrow_money_daily`).Scan(&a, &b))
			is.Equal(a, 0) // a device added again with the same history must not find its money
			is.Equal(b, 1)
			if d.Timescale {
				// The materialized hours forgot the deleted samples, and only them.
				table := testenv.MaterializationTable(t, pool, "sungrow_hourly")
				is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE device_id = 'inverter-a'),
					count(*) FILTER (WHERE device_id = 'inverter-b') FROM `+table).Scan(&a, &b))
				is.Equal(a, 0)
				is.Equal(b, 12)
			} else {
				// The rollup forgot the deleted device's quarter hours, and only them.
				is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE device_id = 'inverter-a'),
					count(*) FILTER (WHERE device_id = 'inverter-b') FROM sungrow_rollup`).Scan(&a, &b))
				is.Equal(a, 0)
				is.Equal(b, 48)
				// So did its days.
				is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE device_id = 'inverter-a'),
					count(*) FILTER (WHERE device_id = 'inverter-b') FROM sungrow_rollup_daily`).Scan(&a, &b))
				is.Equal(a, 0)
				is.True(b > 0)
				levels, err := series.Levels(ctx, pool, time.UTC)
				is.NoErr(err)
				is.Equal(len(levels), 2) // the quarter hours and the days
				ms, err := series.Check(ctx, pool, levels, "", func(series.Level) (time.Time, time.Time) {
					return time.Time{}, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
				})
				is.NoErr(err)
				is.Equal(len(ms), 0)
			}
		})
	}
}

// TestReadOnlyToken: a dashboard's token reads every GET endpoint and the stream of its
// device, is refused ingest with a message naming the cause and another device as any
// token is, and `token list` shows its scope.
func TestReadOnlyToken(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL}
	c := &cli{t: t, env: env}
	edge := c.deviceAdd("inverter-a")
	c.deviceAdd("inverter-b")
	screen := c.tokenAdd("inverter-a", "--read-only", "--label", "kitchen")
	s := startServe(t, env)

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.Base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	sample := `{"samples":[{"device_id":"inverter-a","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`
	status, body := do(http.MethodPost, "/v1/ingest", screen.Token, sample)
	is.Equal(status, http.StatusForbidden)
	is.True(strings.Contains(body, "read-only"))
	status, _ = do(http.MethodPost, "/v1/ingest", edge.Token, sample) // device add's token still writes
	is.Equal(status, http.StatusOK)

	for _, path := range []string{
		"/v1/me",
		"/v1/realtime?device_id=inverter-a",
		"/v1/series?device_id=inverter-a&frame=day&date=2026-01-01",
		"/v1/series?device_id=inverter-a&frame=day&date=2026-01-01&format=csv",
		"/v1/quarantine?device_id=inverter-a",
	} {
		status, body := do(http.MethodGet, path, screen.Token, "")
		is.Equal(status, http.StatusOK) // path
		if path == "/v1/me" {
			is.True(strings.Contains(body, `"scope":"read-only"`))
		}
	}
	stream := testenv.OpenStream(t, s.Base, screen.Token, "inverter-a", "")
	is.Equal(stream.Status, http.StatusOK)
	stream.Close()

	status, _ = do(http.MethodGet, "/v1/realtime?device_id=inverter-b", screen.Token, "")
	is.Equal(status, http.StatusForbidden)
	is.Equal(testenv.OpenStream(t, s.Base, screen.Token, "inverter-b", "").Status, http.StatusForbidden)

	var list []struct {
		ID    *int64 `json:"id"`
		Label string `json:"label"`
		Scope string `json:"scope"`
	}
	is.NoErr(json.Unmarshal([]byte(c.run("token", "list", "inverter-a", "--json")), &list))
	is.Equal(len(list), 2)
	is.Equal(list[0].Scope, "read-write")
	is.Equal(list[1].Label, "kitchen")
	is.Equal(list[1].Scope, "read-only")
	is.True(strings.Contains(c.run("token", "list"), "read-only"))

	out := c.run("token", "add", "inverter-a", "--read-only")
	is.True(regexp.MustCompile(`^token \d+: sg_\S+\n`).MatchString(out)) // the line scripts read, as for any token
	is.True(strings.Contains(out, "read-only"))
}
