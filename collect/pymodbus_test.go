package collect_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// TestCollectOnceAgainstPymodbus is the acceptance against a Modbus server that is not
// ours: Debian's python3-pymodbus serving fixed registers (scripts/services installs it;
// /usr/bin/python3, since a python3 earlier on PATH, e.g. pyenv's, does not see Debian's packages).
func TestCollectOnceAgainstPymodbus(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import pymodbus.server").Run() != nil {
		t.Fatal("python3-pymodbus is not installed: run scripts/services")
	}
	tests := []struct {
		scenario string
		want     map[string]any
	}{
		{"day", map[string]any{"pv_power_w": 70000.0, "load_power_w": 1500.0, "export_power_w": 60000.0,
			"battery_power_w": 8500.0, "battery_soc_pct": 65.5, "battery_temp_c": 25.3, "pv_daily_kwh": 12.3}},
		{"night", map[string]any{"pv_power_w": 0.0, "load_power_w": 4345.0, "export_power_w": -2345.0,
			"battery_power_w": -2000.0, "battery_soc_pct": 20.1, "battery_temp_c": -5.5, "pv_daily_kwh": 12.3}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			is := is.New(t)
			port := testenv.FreePort(t)
			srv := exec.Command("/usr/bin/python3", "testdata/pymodbus_inverter.py", port, tt.scenario)
			is.NoErr(srv.Start())
			t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
			addr := "127.0.0.1:" + port
			testenv.Await(t, "pymodbus listening", 20*time.Second, func() bool {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			out := &strings.Builder{}
			is.NoErr(cmd.Run(context.Background(), []string{"collect", "--once", "--modbus", addr},
				func(string) string { return "" }, out, io.Discard))
			var got map[string]any
			is.NoErr(json.Unmarshal([]byte(out.String()), &got))
			is.Equal(got["device_id"], "AB123") // the serial number
			for k, v := range tt.want {
				is.Equal(got[k], v)
			}
		})
	}
}
