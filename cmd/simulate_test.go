package cmd_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
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

// TestQuickstartWeekAtPinnedInstants: the quickstart's `simulate --days 7` at every
// instant of testenv.Instants (--end pins its "now"), with SUNGROW_TZ the instant's
// zone: a whole week of samples up to now, today's and this week's frames hold what
// fell in them since local midnight and since Monday (hours skipped or repeated by
// daylight saving included), and pv_daily_kwh restarts at every local midnight.
func TestQuickstartWeekAtPinnedInstants(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	ctx := context.Background()
	const step = 5 * time.Minute // the quickstart's 5 s makes the same calendar, slower
	for i, inst := range testenv.Instants(t) {
		t.Run(inst.Name, func(t *testing.T) {
			is := is.New(t)
			device := fmt.Sprintf("inverter-qs-%02d", i)
			start := inst.Now.Add(-7 * 24 * time.Hour)
			out, err := runCLI(map[string]string{"DATABASE_URL": d.URL, "SUNGROW_TZ": inst.Loc.String()},
				"simulate", "--device", device, "--days", "7", "--seed", "1", "--latitude", "37",
				"--interval", step.String(), "--end", inst.Now.Format(time.RFC3339))
			is.NoErr(err)
			week := int64(7 * 24 * time.Hour / step)
			var stored, of int64
			var first, last string
			_, err = fmt.Sscanf(out[strings.Index(out, "stored "):], "stored %d new of %d samples (%s to %s", &stored, &of, &first, &last)
			is.NoErr(err)
			is.Equal(stored, week)
			is.Equal(of, week)
			for got, want := range map[string]time.Time{first: start, strings.TrimSuffix(last, ")"): inst.Now.Add(-step)} {
				ts, err := time.Parse(time.RFC3339, got)
				is.NoErr(err)
				if !ts.Equal(want) { // a week up to now
					t.Errorf("simulate said\n%s\nnot %s", out, want)
				}
			}

			svc, _, err := series.Open(ctx, d.Pool, inst.Loc)
			is.NoErr(err)
			since := func(from time.Time) int64 { // samples in [from, now), if from is after the first
				if from.Before(start) {
					from = start
				}
				return int64((inst.Now.Sub(from) + step - 1) / step)
			}
			y, m, dd := inst.Now.Date()
			midnight := time.Date(y, m, dd, 0, 0, 0, 0, inst.Loc)
			monday := time.Date(y, m, dd-(int(inst.Now.Weekday())+6)%7, 0, 0, 0, 0, inst.Loc)
			for frame, want := range map[string]int64{"day": since(midnight), "week": since(monday), "all": week} {
				date, err := svc.ParseDate("", inst.Now)
				is.NoErr(err)
				res, err := svc.Series(ctx, device, frame, date)
				is.NoErr(err)
				var n int64
				for _, b := range res.Buckets {
					n += b.SampleCount
				}
				if n != want {
					t.Errorf("frame=%s holds %d samples, want %d", frame, n, want)
				}
			}
			for day := start; day.Before(inst.Now); day = day.AddDate(0, 0, 1) {
				y, m, dd := day.Date()
				local := time.Date(y, m, dd+1, 0, 0, 0, 0, inst.Loc)
				if !local.Before(inst.Now) {
					break
				}
				var kwh float64
				is.NoErr(d.Pool.QueryRow(ctx, "SELECT pv_daily_kwh FROM sungrow_samples WHERE device_id = $1 AND ts = $2",
					device, local).Scan(&kwh))
				is.Equal(kwh, 0.0) // the day's counter restarts at local midnight
			}
		})
	}
}

// TestVersionOfAPlainBuild: a `go build` without -ldflags names the commit it was
// built from, read from the binary's build information.
func TestVersionOfAPlainBuild(t *testing.T) {
	is := is.New(t)
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): a plain build has no commit to name", err)
	}
	if st, err := os.Stat("../.git"); err != nil || !st.IsDir() {
		t.Skip("a git worktree (.git is a file): the go command stamps no commit there")
	}
	bin := filepath.Join(t.TempDir(), "sungrow")
	// -buildvcs=true: a GOFLAGS=-buildvcs=false in the environment (as on some CI
	// machines) would otherwise turn the stamping off.
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Dir = ".." // the module root
	out, err := build.CombinedOutput()
	is.NoErr(err) // go build
	t.Log(string(out))
	out, err = exec.Command(bin, "version").Output()
	is.NoErr(err)
	t.Log(string(out))
	is.True(strings.HasPrefix(string(out), "sungrow dev (commit "+string(head[:12]))) // names HEAD
}
