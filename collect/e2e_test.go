package collect_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/collect"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
	"github.com/sungrow/sungrow/simulate"
)

const token = "sg_e2e_secret_token"

func startInverter(t *testing.T) string {
	t.Helper()
	g, err := simulate.New(simulate.Config{DeviceID: "inverter-01", Start: time.Now(), End: time.Now().Add(time.Hour),
		Interval: time.Second, Seed: 7, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000})
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	inv := simulate.NewEmulatedInverter(g, "SIM-inverter-01", time.Now)
	if err := inv.Start(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Stop)
	return addr
}

// collectFor runs `sungrow collect` for d (real time: the acceptance is about
// a real interval) and returns its log.
func collectFor(t *testing.T, d time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	logs := &testenv.LogBuffer{}
	if err := cmd.Run(ctx, append([]string{"collect"}, args...), func(string) string { return "" }, io.Discard, logs); err != nil {
		t.Fatalf("collect: %v\n%s", err, logs)
	}
	return logs.String()
}

func countRows(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM sungrow_samples WHERE device_id = 'inverter-01'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCollectDeliversEveryReadingThroughARefusedToken(t *testing.T) {
	is := is.New(t)
	db := testenv.New(t, testenv.Postgres)
	serve := testserve.StartServe(t, map[string]string{"DATABASE_URL": db.URL, "DEVICE_TOKENS": token + ":inverter-01"})
	modbus := startInverter(t)
	spool := filepath.Join(t.TempDir(), "spool.db")
	common := []string{"--modbus", modbus, "--via", serve.Base, "--interval", "1s", "--upload-every", "1s", "--spool", spool}

	logs := collectFor(t, 12*time.Second, append(common, "--token", token)...)
	n := countRows(t, db.URL)
	t.Logf("12 s at 1 s stored %d readings", n)
	is.True(n >= 9 && n <= 13)
	is.True(!strings.Contains(logs, token)) // the token never appears in a log

	// A refused token: readings are taken and kept, nothing is stored.
	logs = collectFor(t, 4*time.Second, append(common, "--token", "sg_wrong", "--device", "inverter-01")...)
	is.True(strings.Contains(logs, "the server refused the token"))
	is.Equal(countRows(t, db.URL), n)
	// A restart on the same spool with the right token delivers them.
	collectFor(t, 3*time.Second, append(common, "--token", token)...)
	is.True(countRows(t, db.URL) >= n+3+2)
}

func TestCollectOnceAgainstTheEmulatorBalances(t *testing.T) {
	is := is.New(t)
	modbus := startInverter(t)
	out := &strings.Builder{}
	err := cmd.Run(context.Background(), []string{"collect", "--once", "--modbus", modbus},
		func(string) string { return "" }, out, io.Discard)
	is.NoErr(err)
	var raw map[string]any
	is.NoErr(json.Unmarshal([]byte(out.String()), &raw))
	pv, load := raw["pv_power_w"].(float64), raw["load_power_w"].(float64)
	export, battery := raw["export_power_w"].(float64), raw["battery_power_w"].(float64)
	is.Equal(raw["device_id"], "SIM-inverter-01") // the serial number, without --via
	is.True(math.Abs(pv-(load+export+battery)) <= 0.01*math.Max(math.Abs(pv), 1))
	is.True(load > 0)
}

// switchable fronts serve: while down it answers 503 as a restarting server's proxy does.
type switchable struct {
	down atomic.Bool
	next http.Handler
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, `{"detail":"down"}`, http.StatusServiceUnavailable)
		return
	}
	s.next.ServeHTTP(w, r)
}

func TestCollectSurvivesServerAndModbusOutages(t *testing.T) {
	is := is.New(t)
	db := testenv.New(t, testenv.Postgres)
	serve := testserve.StartServe(t, map[string]string{"DATABASE_URL": db.URL, "DEVICE_TOKENS": token + ":inverter-01"})
	target, _ := url.Parse(serve.Base)
	front := &switchable{next: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(front)
	defer proxy.Close()
	g, err := simulate.New(simulate.Config{DeviceID: "inverter-01", Start: time.Now(), End: time.Now().Add(time.Hour),
		Interval: time.Second, Seed: 7, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000})
	is.NoErr(err)
	addr := testenv.FreeAddr(t)
	inv := simulate.NewEmulatedInverter(g, "SIM-inverter-01", time.Now)
	is.NoErr(inv.Start(context.Background(), addr))
	defer inv.Stop()
	spool := filepath.Join(t.TempDir(), "spool.db")

	done := make(chan string, 1)
	go func() {
		done <- collectFor(t, 20*time.Second, "--modbus", addr, "--via", proxy.URL, "--token", token,
			"--interval", "1s", "--upload-every", "1s", "--spool", spool, "--listen", "127.0.0.1:0")
	}()
	time.Sleep(2 * time.Second) // the outages are the scenario's timeline, not a wait for a result
	front.down.Store(true)      // an 8 s server outage from t=2 s to t=10 s
	inv.Stop()                  // a 6 s Modbus outage from t=2 s to t=8 s
	time.Sleep(6 * time.Second)
	is.NoErr(inv.Start(context.Background(), addr))
	time.Sleep(2 * time.Second)
	front.down.Store(false)
	logs := <-done

	is.True(strings.Contains(logs, "reading the inverter again")) // survived without a restart
	s, err := collect.OpenSpool(spool, 100)
	is.NoErr(err)
	defer s.Close()
	taken := countRows(t, db.URL) + s.Depth()
	t.Logf("stored %d, still spooled %d", countRows(t, db.URL), s.Depth())
	// Everything read is stored or still spooled (at most the last second's reading,
	// taken after the final upload: the next start sends it).
	is.True(s.Depth() <= 1)
	is.True(taken >= 9) // 20 s less the 6 s outage and its reconnect backoff
}
