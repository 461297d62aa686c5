package cmd_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

func runCLI(env map[string]string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cmd.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestSimulateIntoTheDatabaseTwiceStoresOnce(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	// The house's days begin where the server's do, in SUNGROW_TZ.
	env := map[string]string{"DATABASE_URL": d.URL, "SUNGROW_TZ": "Europe/Berlin"}
	args := []string{"simulate", "--device", "inverter-cli", "--days", "2", "--interval", "1m",
		"--seed", "3", "--end", "2026-02-15T00:00:00Z"}

	out, err := runCLI(env, args...)
	is.NoErr(err)
	is.True(strings.Contains(out, "stored 2880 new of 2880 samples (2026-02-13T00:00:00Z to 2026-02-14T23:59:00Z)"))

	out, err = runCLI(env, args...)
	is.NoErr(err)
	is.True(strings.Contains(out, "stored 0 new of 2880 samples"))

	var n int
	var firstDaily float64
	is.NoErr(d.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM sungrow_samples WHERE device_id = 'inverter-cli'").Scan(&n))
	is.Equal(n, 2880)
	// 23:00 UTC is midnight in Berlin in February: the daily counter restarts there.
	is.NoErr(d.Pool.QueryRow(context.Background(),
		"SELECT pv_daily_kwh FROM sungrow_samples WHERE ts = '2026-02-13T23:00:00Z'").Scan(&firstDaily))
	is.Equal(firstDaily, 0.0)
}

func TestSimulateExplainsWhatIsMissing(t *testing.T) {
	is := is.New(t)
	_, err := runCLI(nil, "simulate", "--days", "1")
	is.True(err != nil && strings.Contains(err.Error(), "--device"))
	_, err = runCLI(nil, "simulate", "--device", "d", "--via", "http://127.0.0.1:1")
	is.True(err != nil && strings.Contains(err.Error(), "--token"))
	_, err = runCLI(nil, "simulate", "--device", "d")
	is.True(err != nil && strings.Contains(err.Error(), "DATABASE_URL"))
}

func TestVersion(t *testing.T) {
	is := is.New(t)
	out, err := runCLI(nil, "version")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "sungrow "+cmd.Version+" (commit "+cmd.Commit))
	out, err = runCLI(nil, "--version")
	is.NoErr(err)
	is.True(strings.Contains(out, cmd.Version))
}

func TestHealthcheck(t *testing.T) {
	is := is.New(t)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")

	_, err := runCLI(nil, "healthcheck", "--url", srv.URL+"/health")
	is.NoErr(err)
	// Without --url it finds the server from LISTEN_ADDR, wildcard host or not.
	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "127.0.0.1:" + port} {
		_, err = runCLI(map[string]string{"LISTEN_ADDR": addr}, "healthcheck")
		is.NoErr(err)
	}

	status = http.StatusServiceUnavailable
	_, err = runCLI(map[string]string{"LISTEN_ADDR": ":" + port}, "healthcheck")
	is.True(err != nil && strings.Contains(err.Error(), "503"))

	srv.Close()
	u, _ := url.Parse(srv.URL)
	_, err = runCLI(map[string]string{"LISTEN_ADDR": u.Host}, "healthcheck")
	is.True(err != nil) // nobody listening
}
