package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

// TestSimulatedDayNumbers: a simulated day (idle battery hours included, where the
// queries' sums come out as -0) answers without a -0, and every CSV cell is the very
// text the JSON gives the same field, so no cell is an over-long fixed-point number.
func TestSimulatedDayNumbers(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		day := time.Date(2026, 2, 14, 0, 0, 0, 0, time.UTC)
		g, err := simulate.New(simulate.Config{DeviceID: device, Start: day, End: day.AddDate(0, 0, 1), Interval: 5 * time.Second,
			Seed: 3, Latitude: simulate.DefaultLatitude, Location: time.UTC, PVPeakW: simulate.DefaultPVPeakW,
			BatteryKWh: simulate.DefaultBatteryKWh, BatteryMaxW: simulate.DefaultBatteryMaxW})
		is.NoErr(err)
		insertSamples(t, d.Pool, g.Next(make([]telemetry.Sample, 0, g.Count()), g.Count()))
		svc, _, err := series.Open(ctx, d.Pool, time.UTC)
		is.NoErr(err)
		srv := newSeriesServer(t, d.Pool, svc, nil)

		query := "device_id=" + device + "&frame=day&date=2026-02-14"
		raw, _ := getSeriesOK(t, srv.URL, query)
		negativeZero := regexp.MustCompile(`-0(\.0*)?([eE][-+]?\d+)?[,}\]]`)
		is.Equal(negativeZero.Find(raw), nil) // no -0 in the JSON

		var body struct {
			Series []map[string]any `json:"series"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // keep each number's text
		is.NoErr(dec.Decode(&body))
		is.Equal(len(body.Series), 24)

		status, text := getSeries(t, srv.URL, query+"&format=csv")
		is.Equal(status, 200)
		rows, err := csv.NewReader(bytes.NewReader(text)).ReadAll()
		is.NoErr(err)
		is.Equal(len(rows), 25) // the header and the hours
		tiny := 0
		for i, bucket := range body.Series {
			for j, column := range rows[0] {
				cell := rows[i+1][j]
				switch v := bucket[column].(type) {
				case json.Number:
					if cell != v.String() {
						t.Errorf("hour %d %s: CSV %q, JSON %s", i, column, cell, v)
					}
					if f, _ := v.Float64(); f != 0 && f > -1e-6 && f < 1e-6 {
						tiny++
					}
				case nil:
					is.Equal(cell, "")
				case string:
					is.Equal(cell, v) // the bucket's time
				}
				if regexp.MustCompile(`^-0(\.0*)?$`).MatchString(cell) {
					t.Errorf("hour %d %s: CSV %q", i, column, cell)
				}
			}
		}
		t.Logf("%d cells below 1e-6 in magnitude, with an exponent in both", tiny)
	})
}

// TestNegativeZeroFromTheEdge: Python prints an idle reading as -0.0; it is stored as 0,
// so the newest sample never answers -0.
func TestNegativeZeroFromTheEdge(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool)
	res := post(t, srv.URL, token, `{"samples":[{"device_id":"`+device+`","ts":"2026-02-15T08:00:00Z","pv_power_w":-0.0,`+
		`"battery_power_w":-0,"battery_soc_pct":50,"load_power_w":-0e3,"export_power_w":-0.0}]}`)
	is.Equal(res.status, 200)
	r, body := get(t, srv.URL+"/v1/realtime?device_id="+device, map[string]string{"Authorization": "Bearer " + token})
	is.Equal(r.StatusCode, 200)
	is.True(strings.Contains(body, `"battery_power_w":0`))
	if strings.Contains(body, ":-0") {
		t.Errorf("-0 in %s", body)
	}
}
