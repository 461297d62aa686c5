package cmd_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
)

// ledgerOf reads the energy `sungrow simulate` says it generated.
func ledgerOf(t *testing.T, out string) map[string]float64 {
	t.Helper()
	line := regexp.MustCompile(`generated energy: (.*)`).FindStringSubmatch(out)
	if line == nil {
		t.Fatalf("no ledger in:\n%s", out)
	}
	ledger := map[string]float64{}
	for _, kv := range regexp.MustCompile(`(\w+)=(\S+)`).FindAllStringSubmatch(line[1], -1) {
		v, err := strconv.ParseFloat(kv[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		ledger[kv[1]] = v
	}
	return ledger
}

// TestSimulatedWeekTotalsEqualTheLedger: a week of the default house at 5 s, stored by
// `sungrow simulate`, totals in every frame to the energy the simulator says it
// generated, before and after `sungrow refresh`, and what the measurements leave
// unexplained stays within the battery's conversion losses.
func TestSimulatedWeekTotalsEqualTheLedger(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			d := testenv.New(t, b)
			d.Pool.Close() // the commands open their own connection (the test server takes one)
			env := map[string]string{"DATABASE_URL": d.URL}
			monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			out, err := runCLI(env, "simulate", "--device", "inverter-sim", "--seed", "12",
				"--end", monday.AddDate(0, 0, 7).Format(time.RFC3339)) // default: 7 days at 5 s
			is.NoErr(err)
			ledger := ledgerOf(t, out)
			is.True(ledger["battery_charge_kwh"] > 1 && ledger["grid_import_kwh"] > 1) // a house that cycles

			check := func(stage string) {
				pool, err := pgxpool.New(ctx, d.URL)
				is.NoErr(err)
				defer pool.Close()
				svc, _, err := series.Open(ctx, pool, time.UTC)
				is.NoErr(err)
				near := func(what string, got, want float64) {
					t.Helper()
					if math.Abs(got-want) > 1e-6*math.Abs(want) {
						t.Errorf("%s %s = %v, ledger %v", stage, what, got, want)
					}
				}
				compare := func(frame string, got series.Energy) {
					t.Helper()
					for name, v := range map[string]float64{"pv_kwh": got.PVKWh, "load_kwh": got.LoadKWh,
						"grid_import_kwh": got.GridImportKWh, "grid_export_kwh": got.GridExportKWh,
						"battery_charge_kwh": got.BatteryChargeKWh, "battery_discharge_kwh": got.BatteryDischargeKWh} {
						near(frame+" "+name, v, ledger[name])
					}
				}
				// The week's seven day frames add up to the ledger too.
				var days series.Energy
				for i := range 7 {
					res, err := svc.Series(ctx, "inverter-sim", "day", monday.AddDate(0, 0, i))
					is.NoErr(err)
					is.Equal(len(res.Buckets), 24)
					days.PVKWh += res.Totals.PVKWh
					days.LoadKWh += res.Totals.LoadKWh
					days.GridImportKWh += res.Totals.GridImportKWh
					days.GridExportKWh += res.Totals.GridExportKWh
					days.BatteryChargeKWh += res.Totals.BatteryChargeKWh
					days.BatteryDischargeKWh += res.Totals.BatteryDischargeKWh
				}
				compare("7 × day", days)
				for _, frame := range []string{"week", "month", "year", "all"} {
					res, err := svc.Series(ctx, "inverter-sim", frame, monday)
					is.NoErr(err)
					compare(frame, res.Totals.Energy)
					if bal := math.Abs(res.Totals.BalanceKWh); bal > ledger["battery_loss_kwh"] {
						t.Errorf("%s %s: balance_kwh %v beyond the battery's losses %v", stage, frame, bal, ledger["battery_loss_kwh"])
					}
					is.True(res.Totals.BatteryChargeKWh >= res.Totals.BatteryDischargeKWh) // no battery gives more
				}
				all, err := svc.AllTime(ctx, "inverter-sim")
				is.NoErr(err)
				compare("AllTime", all)
			}
			check("live")
			if d.Timescale {
				out, err := runCLI(env, "refresh")
				is.NoErr(err)
				is.True(regexp.MustCompile(`refreshed sungrow_monthly`).MatchString(out))
				check("materialized")
			}
			fmt.Fprint(testWriter{t}, out)
		})
	}
}

// testWriter logs through t, so the command's output shows with -v.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
