package homeassistant_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// seriesTotals is totals of GET /v1/series?frame=all.
func seriesTotals(t *testing.T, base, token, device string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/series?frame=all&device_id="+device, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Totals map[string]any `json:"totals"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
		t.Fatalf("GET /v1/series: %d", res.StatusCode)
	}
	return body.Totals
}

var energyFields = []string{"pv_kwh", "load_kwh", "grid_import_kwh", "grid_export_kwh", "battery_charge_kwh", "battery_discharge_kwh"}

// TestStateEnergyIsTheSeriesTotalsAndNeverDecreases: after each ingest the state's
// energy equals totals of /v1/series?frame=all, on both backends, and no total goes
// down, a backfilled older batch included (it only adds energy).
func TestStateEnergyIsTheSeriesTotalsAndNeverDecreases(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		broker := testenv.StartMosquitto(t)
		store := telemetry.NewStore(d.Pool)
		svc, _, err := series.Open(t.Context(), d.Pool, time.UTC)
		is.NoErr(err)
		rec := testenv.RecordMQTT(t, broker)
		b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: svc, min: 100 * time.Millisecond})
		tokens := map[string]string{"tok": "inverter-01"}
		srv := ingestServer(t, httpapi.Deps{Tokens: tokens, Samples: store, Series: svc, Stored: []httpapi.StoredListener{b}})
		topic := "sungrow/inverter-01/state"

		batches := []struct {
			name string
			from time.Time
			n    int
		}{
			{"first", t0, 30},
			{"next", t0.Add(time.Hour), 30},
			{"an older backfill", t0.Add(-3 * time.Hour), 40},
			{"newest", t0.Add(2 * time.Hour), 10},
		}
		prev := map[string]float64{}
		newest := time.Time{}
		for _, bt := range batches {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", strings.NewReader(string(mixedBatch(bt.from, bt.n))))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, http.StatusOK)
			if last := bt.from.Add(time.Duration(bt.n-1) * 5 * time.Second); last.After(newest) {
				newest = last
			}
			want := seriesTotals(t, srv.URL, "tok", "inverter-01")
			var st map[string]any
			testenv.Await(t, "the state after "+bt.name, 30*time.Second, func() bool {
				s, ok := lastState(rec.Since(0), topic)
				if !ok || s["ts"] != newest.Format(time.RFC3339) {
					return false
				}
				for _, f := range energyFields {
					if s[f] != want[f] {
						return false
					}
				}
				st = s
				return true
			})
			for _, f := range energyFields {
				got := st[f].(float64)
				is.True(got >= prev[f]) // never down
				prev[f] = got
			}
			is.True(st["grid_import_kwh"].(float64) > 0 && st["grid_export_kwh"].(float64) > 0)
			is.True(st["battery_charge_kwh"].(float64) > 0 && st["battery_discharge_kwh"].(float64) > 0)
			t.Logf("after %s: %v", bt.name, st)
		}
	})
}

// mixedBatch is n samples from ts, 5 s apart, that import and export, charge and
// discharge by turns, with sample_count 1–3.
func mixedBatch(ts time.Time, n int) []byte {
	samples := make([]map[string]any, n)
	for i := range samples {
		sign := float64(1 - 2*(i%2))
		samples[i] = map[string]any{
			"device_id": "inverter-01", "ts": ts.Add(time.Duration(i) * 5 * time.Second).Format(time.RFC3339),
			"pv_power_w": 2500.0 + float64(i%7)*10, "pv_daily_kwh": nil, "battery_power_w": sign * 800,
			"battery_soc_pct": 60.0, "battery_temp_c": 21.0, "load_power_w": 900.0 + float64(i%5)*3,
			"export_power_w": -sign*700 + float64(i%3), "sample_count": 1 + i%3,
		}
	}
	body, _ := json.Marshal(map[string]any{"samples": samples})
	return body
}
