package cmd_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
)

// TestTariffCommands sets, imports, lists and removes prices through the command line,
// and checks that bad input is refused naming what is wrong, with nothing written.
func TestTariffCommands(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		d.Pool.Close() // the commands open their own connection
		ctx := context.Background()
		env := map[string]string{"DATABASE_URL": d.URL, "SUNGROW_TZ": "Europe/Brussels"}
		tariff := func(args ...string) (string, error) {
			out, _, err := run(ctx, env, append([]string{"tariff"}, args...)...)
			return out, err
		}
		refused := func(want string, args ...string) {
			t.Helper()
			_, err := tariff(args...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("tariff %s: %v, want an error saying %q", strings.Join(args, " "), err, want)
			}
		}
		list := func() string {
			t.Helper()
			out, err := tariff("list")
			is.NoErr(err)
			return out
		}

		out, err := tariff("set", "--from", "2026-01-01", "--import", "0.30", "--export", "0.08")
		is.NoErr(err)
		is.True(strings.Contains(out, "set price 1: (all devices) from 2026-01-01, import 0.30, export 0.08 EUR/kWh"))
		refused("already has a fixed price from 2026-01-01 (id 1)", "set", "--from", "2026-01-01", "--import", "0.31", "--export", "0.08")
		out, err = tariff("set", "--device", "inv-1", "--from", "2026-03-20", "--import", "0.21", "--export", "0.05",
			"--window", "22:00-06:00", "--days", "mon-sun")
		is.NoErr(err)
		is.True(strings.Contains(out, "note: 112 hours of the week have no price from 2026-03-20")) // 168 − 7×8
		before := list()
		refused("overlaps window 22:00-06:00 mon-sun (id 2) of device inv-1 from 2026-03-20 at Monday 05:00",
			"set", "--device", "inv-1", "--from", "2026-03-20", "--import", "0.4", "--export", "0.05", "--window", "05:00-07:00", "--days", "mon-fri")
		refused("currency CHF: prices of device inv-1 and all devices are in EUR",
			"set", "--device", "inv-1", "--from", "2026-04-01", "--import", "0.3", "--export", "0.1", "--currency", "CHF")
		refused("currency CHF: prices of the devices are in EUR",
			"set", "--from", "2026-04-01", "--import", "0.3", "--export", "0.1", "--currency", "chf")
		// Every bad flag at once.
		_, err = tariff("set", "--from", "2026-02-30", "--import", "cheap", "--export", "0.1", "--currency", "XYZ", "--window", "22:30-06:00")
		is.True(err != nil)
		for _, want := range []string{"--from \"2026-02-30\"", "--import \"cheap\"", "--currency \"XYZ\" is not an ISO 4217", "--window \"22:30\": windows start and end on whole hours"} {
			is.True(strings.Contains(err.Error(), want)) // every problem is named
		}
		refused("--days needs --window", "set", "--from", "2026-04-01", "--import", "0.3", "--export", "0.1", "--days", "mon")
		is.Equal(list(), before) // nothing was written

		dir := t.TempDir()
		csv := func(name, body string) string {
			p := filepath.Join(dir, name)
			is.NoErr(os.WriteFile(p, []byte(body), 0o600))
			return p
		}
		bad := csv("bad.csv", "start,import_price,export_price\n2026-06-01T00:00:00+02:00,0.11,0.02\n2026-06-01T01:00:00+02:00,0.1O,0.02\n")
		refused("bad.csv line 3, field import_price: \"0.1O\"", "import", "--device", "inv-1", bad)
		is.Equal(list(), before) // not even the good first line
		good := csv("june.csv", "2026-06-01T00:00:00+02:00,0.11,0.02\n2026-06-01T01:00:00+02:00,-0.01\n2026-06-01T02:00:00+02:00,0.09,0.03\n")
		out, err = tariff("import", "--device", "inv-1", good)
		is.NoErr(err)
		is.True(strings.HasPrefix(out, "imported 3 hourly prices in EUR for inv-1 as price "))
		is.True(strings.HasSuffix(out, " from 2026-05-31T22:00:00Z to 2026-06-01T01:00:00Z\n"))
		firstImport := strings.TrimSuffix(strings.Fields(out)[10], ",") // its id
		is.True(strings.Contains(list(), "\n"+firstImport+" "))
		is.True(strings.Contains(list(), "3 hours to 2026-06-01T01:00:00Z"))
		// A later import takes the hours over; an import left with none disappears.
		again := csv("again.csv", "2026-06-01T00:00:00+02:00,0.12\n2026-06-01T01:00:00+02:00,0.12\n2026-06-01T02:00:00+02:00,0.12\n")
		_, err = tariff("import", "--device", "inv-1", again)
		is.NoErr(err)
		l := list()
		is.True(!strings.Contains(l, "\n"+firstImport+" ")) // the first import is gone
		is.True(strings.Contains(l, "3 hours to"))
		refused("currency USD", "import", "--device", "inv-1", "--currency", "USD", again)

		out, err = tariff("remove", "2")
		is.NoErr(err)
		is.Equal(out, "removed price 2\n")
		refused("no price has this id", "remove", "2")
		refused("not a price id", "remove", "two")
		out, err = tariff("list", "--device", "inv-2")
		is.NoErr(err)
		is.True(strings.Contains(out, "(all devices)") && !strings.Contains(out, "inv-1")) // what applies to inv-2

		out, err = tariff("list", "--json")
		is.NoErr(err)
		var prices []map[string]any
		is.NoErr(json.Unmarshal([]byte(out), &prices))
		is.Equal(len(prices), 2) // the fixed price of all devices and inv-1's import
		is.Equal(prices[0]["device_id"], nil)
		is.Equal(prices[0]["kind"], "fixed")
		is.Equal(prices[0]["valid_from"], "2026-01-01")
		is.Equal(prices[0]["import"], "0.3") // decimal text, not through a float
		is.Equal(prices[1]["device_id"], "inv-1")
		is.Equal(prices[1]["kind"], "hourly")
		is.Equal(prices[1]["hours"], 3.0)
		is.Equal(prices[1]["import"], nil)
		is.Equal(prices[1]["until"], "2026-06-01T01:00:00Z")
	})
}
