package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// energyFixture is samples every 10 minutes over the two Brussels DST weeks of 2026 and
// a few days between, values exact in binary. Inside every hour the grid both imports
// and exports and the battery both charges and discharges; sample_count is 1 to 3; PV
// is zero in the small hours (self-consumption null) and load is zero at 02:xx UTC
// (autarky null); the hour 10:00 UTC of 2026-03-29 has no sample at all; the inverter
// counter rises through each local day in March and is absent in October.
func energyFixture(loc *time.Location) (samples []telemetry.Sample, missing time.Time) {
	missing = time.Date(2026, 3, 29, 10, 0, 0, 0, time.UTC)
	i := 0
	for _, span := range [][2]time.Time{
		{time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 6, 14, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 16, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC)},
	} {
		for ts := span[0]; ts.Before(span[1]); ts = ts.Add(10 * time.Minute) {
			i++
			if ts.Truncate(time.Hour).Equal(missing) {
				continue
			}
			s := telemetry.Sample{
				DeviceID: device, TS: ts,
				PVPowerW:      float64((i * 37) % 3000),
				BatteryPowerW: float64((i*53)%2000) - 1000.25, // both signs within an hour
				BatterySoCPct: float64((i*7)%100) + 0.5,
				LoadPowerW:    float64((i*11)%1500) + 100,
				ExportPowerW:  float64((i*13)%1000) - 500.5, // both signs within an hour
				SampleCount:   int32(1 + i%3),
			}
			if h := ts.Hour(); h < 2 {
				s.PVPowerW = 0
			} else if h == 2 {
				s.LoadPowerW = 0
			}
			if ts.Month() == time.March {
				local := ts.In(loc)
				kwh := float64(local.Hour()*60+local.Minute()) / 16 // rises through the local day
				s.PVDailyKWh = &kwh
			}
			samples = append(samples, s)
		}
	}
	return samples, missing
}

// wantFlows is what a bucket or frame must hold, computed here from the samples.
type wantFlows struct {
	bucket                                       time.Time
	pv, load, imp, exp, charge, discharge, count float64
	dayMax                                       map[time.Time]float64 // local day → largest counter
}

func (w *wantFlows) add(s telemetry.Sample, day time.Time) {
	c := float64(s.SampleCount)
	w.pv += s.PVPowerW * c
	w.load += s.LoadPowerW * c
	w.imp += math.Max(-s.ExportPowerW, 0) * c
	w.exp += math.Max(s.ExportPowerW, 0) * c
	w.charge += math.Max(s.BatteryPowerW, 0) * c
	w.discharge += math.Max(-s.BatteryPowerW, 0) * c
	w.count += c
	if s.PVDailyKWh != nil {
		if w.dayMax == nil {
			w.dayMax = map[time.Time]float64{}
		}
		if v, ok := w.dayMax[day]; !ok || *s.PVDailyKWh > v {
			w.dayMax[day] = *s.PVDailyKWh
		}
	}
}

// kwh is the fields' expected values for samples that stand for interval each.
func (w wantFlows) kwh(interval time.Duration, hourly bool) map[string]*float64 {
	k := func(ws float64) float64 { return ws * interval.Seconds() / 3_600_000 }
	pv, load, imp, exp, ch, dis := k(w.pv), k(w.load), k(w.imp), k(w.exp), k(w.charge), k(w.discharge)
	f := func(v float64) *float64 { return &v }
	rate := func(part, whole float64) *float64 {
		if whole == 0 {
			return nil
		}
		return f(math.Min(math.Max(100*part/whole, 0), 100))
	}
	out := map[string]*float64{
		"pv_kwh": f(pv), "load_kwh": f(load), "grid_import_kwh": f(imp), "grid_export_kwh": f(exp),
		"battery_charge_kwh": f(ch), "battery_discharge_kwh": f(dis),
		"self_consumption_pct": rate(pv-exp, pv), "autarky_pct": rate(load-imp, load),
		"balance_kwh":     f(pv + imp + dis - load - ch - exp),
		"pv_inverter_kwh": nil,
	}
	if !hourly && w.dayMax != nil {
		var sum float64
		for _, v := range w.dayMax {
			sum += v
		}
		out["pv_inverter_kwh"] = f(sum)
	}
	return out
}

// expectFlows groups the samples in [from, to) into buckets by floor, and into one
// total.
func expectFlows(samples []telemetry.Sample, from, to time.Time, floor func(time.Time) time.Time,
	loc *time.Location) ([]wantFlows, wantFlows) {
	byStart := map[time.Time]*wantFlows{}
	var total wantFlows
	for _, s := range samples {
		if s.TS.Before(from) || !s.TS.Before(to) {
			continue
		}
		l := s.TS.In(loc)
		day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		k := floor(s.TS)
		if byStart[k] == nil {
			byStart[k] = &wantFlows{bucket: k}
		}
		byStart[k].add(s, day)
		total.add(s, day)
	}
	var out []wantFlows
	for _, b := range byStart {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b wantFlows) int { return a.bucket.Compare(b.bucket) })
	return out, total
}

// energyBody is the energy part of a /v1/series answer, nulls kept as nil.
type energyBody struct {
	Series []map[string]any `json:"series"`
	Totals map[string]any   `json:"totals"`
}

var energyFields = []string{"pv_kwh", "load_kwh", "grid_import_kwh", "grid_export_kwh", "battery_charge_kwh",
	"battery_discharge_kwh", "self_consumption_pct", "autarky_pct", "balance_kwh", "pv_inverter_kwh"}

// checkFlows compares the energy fields of got to want, relative 1e-9 (absolute near 0).
func checkFlows(t *testing.T, what string, got map[string]any, want map[string]*float64) {
	t.Helper()
	for _, name := range energyFields {
		g, present := got[name]
		if !present {
			t.Errorf("%s: no %s", what, name)
			continue
		}
		w := want[name]
		switch {
		case w == nil && g != nil:
			t.Errorf("%s %s = %v, want null", what, name, g)
		case w != nil && g == nil:
			t.Errorf("%s %s = null, want %v", what, name, *w)
		case w != nil:
			if gv := g.(float64); math.Abs(gv-*w) > 1e-9*math.Max(1e-3, math.Abs(*w)) {
				t.Errorf("%s %s = %v, want %v", what, name, gv, *w)
			}
		}
	}
}

// TestSeriesEnergy checks every energy field of every frame, buckets and totals,
// against the fixture on both databases, in Europe/Brussels across both DST days; on
// TimescaleDB also that aggregates and raw path answer byte for byte the same, before
// and after the aggregates are materialized; and that the CSV carries the same numbers.
func TestSeriesEnergy(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	fixture, missing := energyFixture(brussels)
	d := func(y int, m time.Month, dd int) time.Time { return time.Date(y, m, dd, 0, 0, 0, 0, brussels) }
	hour := func(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
	day := func(t time.Time) time.Time { t = t.In(brussels); return d(t.Year(), t.Month(), t.Day()) }
	month := func(t time.Time) time.Time { t = t.In(brussels); return d(t.Year(), t.Month(), 1) }
	cases := []struct {
		query    string
		from, to time.Time
		floor    func(time.Time) time.Time
		buckets  int
	}{
		{"frame=day&date=2026-03-29", d(2026, 3, 29), d(2026, 3, 30), hour, 22}, // 23 hours, one missing
		{"frame=day&date=2026-10-25", d(2026, 10, 25), d(2026, 10, 26), hour, 25},
		{"frame=day&date=2026-06-15", d(2026, 6, 15), d(2026, 6, 16), hour, 24},
		{"frame=week&date=2026-03-29", d(2026, 3, 23), d(2026, 3, 30), day, 4},
		{"frame=week&date=2026-10-25", d(2026, 10, 19), d(2026, 10, 26), day, 4},
		{"frame=month&date=2026-03-01", d(2026, 3, 1), d(2026, 4, 1), day, 6},
		{"frame=month&date=2026-10-31", d(2026, 10, 1), d(2026, 11, 1), day, 7},
		{"frame=year&date=2026-05-05", d(2026, 1, 1), d(2027, 1, 1), month, 4},
		{"frame=all", d(1970, 1, 1), d(2100, 1, 1), month, 4},
	}
	interval := 7 * time.Second // not the default, so the lookup is proven used
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			db := testenv.NewEmpty(t, b)
			// The test server keeps session settings across connections: reset it.
			_, err := db.Pool.Exec(ctx, "SELECT set_config('sungrow.tz', 'Europe/Brussels', false)")
			is.NoErr(err)
			testenv.Migrate(t, db.Pool)
			_, err = db.Pool.Exec(ctx, "SELECT set_config('sungrow.tz', '', false)")
			is.NoErr(err)
			insertSamples(t, db.Pool, fixture)

			svc, info, err := series.Open(ctx, db.Pool, brussels)
			is.NoErr(err)
			if db.Timescale {
				is.Equal(info.Path, series.PathAggregates)
			}
			lookup := func(dev string) time.Duration {
				is.Equal(dev, device) // asked for the device of the request
				return interval
			}
			srv := newSeriesServer(t, db.Pool, svc.WithInterval(lookup), nil)
			rawSrv := newSeriesServer(t, db.Pool, series.NewRaw(db.Pool, brussels).WithInterval(lookup), nil)

			var clampedSelf, clampedAutarky, nullSelf, nullAutarky bool
			check := func(stage string) {
				for _, c := range cases {
					raw, _ := getSeriesOK(t, srv.URL, "device_id="+device+"&"+c.query)
					var body energyBody
					is.NoErr(json.Unmarshal(raw, &body))
					buckets, total := expectFlows(fixture, c.from, c.to, c.floor, brussels)
					hourly := strings.HasPrefix(c.query, "frame=day")
					if len(body.Series) != c.buckets || len(buckets) != c.buckets {
						t.Fatalf("%s %s: %d buckets, fixture %d, want %d", stage, c.query, len(body.Series), len(buckets), c.buckets)
					}
					for i, w := range buckets {
						g := body.Series[i]
						is.Equal(g["bucket"], w.bucket.In(brussels).Format(time.RFC3339))
						is.True(hour(w.bucket) != missing) // the missing hour has no bucket
						checkFlows(t, stage+" "+c.query+" "+g["bucket"].(string), g, w.kwh(interval, hourly))
						clampedSelf = clampedSelf || g["self_consumption_pct"] == 0.0
						clampedAutarky = clampedAutarky || g["autarky_pct"] == 0.0
						nullSelf = nullSelf || g["self_consumption_pct"] == nil
						nullAutarky = nullAutarky || g["autarky_pct"] == nil
					}
					checkFlows(t, stage+" "+c.query+" totals", body.Totals, total.kwh(interval, hourly))

					rawJSON, _ := getSeriesOK(t, rawSrv.URL, "device_id="+device+"&"+c.query)
					if !bytes.Equal(raw, rawJSON) {
						t.Errorf("%s %s: aggregate path and raw path differ:\n%s\n%s", stage, c.query, raw, rawJSON)
					}
					checkCSV(t, srv.URL, c.query, body)
				}
			}
			check("live")
			is.True(clampedSelf && clampedAutarky) // the fixture reaches the clamps
			is.True(nullSelf && nullAutarky)       // and the zero denominators
			if db.Timescale {
				for _, agg := range series.Aggregates {
					from, to := series.Window(agg, time.Time{}, time.Time{}, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), brussels)
					is.NoErr(series.Refresh(ctx, db.Pool, agg, from, to))
					is.True(materializedRows(t, db.Pool, agg) > 0)
				}
				check("materialized")
			}

			// AllTime is frame=all's totals.
			all, err := svc.WithInterval(lookup).AllTime(ctx, device)
			is.NoErr(err)
			_, total := expectFlows(fixture, time.Time{}, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), hour, brussels)
			w := total.kwh(interval, false)
			for name, g := range map[string]float64{"pv_kwh": all.PVKWh, "load_kwh": all.LoadKWh,
				"grid_import_kwh": all.GridImportKWh, "grid_export_kwh": all.GridExportKWh,
				"battery_charge_kwh": all.BatteryChargeKWh, "battery_discharge_kwh": all.BatteryDischargeKWh} {
				is.True(math.Abs(g-*w[name]) <= 1e-9**w[name]) // AllTime
			}
		})
	}
}

// checkCSV fetches query as CSV, both ways of asking, and compares it with the JSON.
func checkCSV(t *testing.T, base, query string, body energyBody) {
	t.Helper()
	for _, ask := range []func(*http.Request){
		func(r *http.Request) { r.URL.RawQuery += "&format=csv" },
		func(r *http.Request) { r.Header.Set("Accept", "text/csv") },
	} {
		req, err := http.NewRequest(http.MethodGet, base+"/v1/series?device_id="+device+"&"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		ask(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(res.Body).ReadAll()
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("CSV %s: %d %v", query, res.StatusCode, err)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("CSV Content-Type %q", ct)
		}
		frame := strings.TrimPrefix(strings.Split(query, "&")[0], "frame=")
		if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=sungrow-"+device+"-"+frame+"-") {
			t.Errorf("CSV Content-Disposition %q", cd)
		}
		if len(rows) != len(body.Series)+1 {
			t.Fatalf("CSV %s: %d rows, want a header and %d", query, len(rows), len(body.Series))
		}
		header := rows[0]
		for i, b := range body.Series {
			if len(b) != len(header) {
				t.Fatalf("CSV has %d columns, JSON buckets %d fields", len(header), len(b))
			}
			for j, name := range header {
				v, ok := b[name]
				cell := rows[i+1][j]
				switch {
				case !ok:
					t.Fatalf("CSV column %q is no JSON field", name)
				case v == nil:
					if cell != "" {
						t.Errorf("CSV %s row %d %s = %q, want empty for null", query, i, name, cell)
					}
				case name == "bucket":
					if cell != v {
						t.Errorf("CSV bucket %q, JSON %q", cell, v)
					}
				default:
					if f, err := strconv.ParseFloat(cell, 64); err != nil || f != v.(float64) {
						t.Errorf("CSV %s row %d %s = %q, JSON %v", query, i, name, cell, v)
					}
				}
			}
		}
	}
}
