package series_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

const costDevice = "inverter-priced"

// costInterval is what one reading stands for here: the fixture's spacing, so that
// money comes to euros, and rounding to the cent means something.
const costInterval = 20 * time.Minute

// costFixture is samples every 20 minutes from 2025-12-30 to 2026-11-02 UTC: each hour
// imports and exports (export_power_w changes sign within it), sample_count 1–3, and
// values exact in binary, so both paths add up to the same bits.
func costFixture() []telemetry.Sample {
	var out []telemetry.Sample
	i := 0
	for ts := time.Date(2025, 12, 30, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)); ts = ts.Add(20 * time.Minute) {
		out = append(out, telemetry.Sample{DeviceID: costDevice, TS: ts,
			PVPowerW: float64((i * 37) % 3000), BatteryPowerW: float64((i*53)%2000) - 1000.25,
			BatterySoCPct: float64((i*7)%100) + 0.5, LoadPowerW: float64((i*11)%1500) + 100,
			ExportPowerW: float64((i*13)%1000) - 500.5, SampleCount: int32(1 + i%3)})
		i++
	}
	return out
}

// priceOf is the fixture's tariff written out by hand, independently of the SQL: the
// import and export price of the hour beginning at h, and whether any applies.
type hourPrices map[time.Time][2]string // start → import, export ("" : none)

func priceOf(h time.Time, loc *time.Location, hourly hourPrices) (imp, exp float64, ok bool) {
	l := h.In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
	on := func(y int, m time.Month, d int) bool { return !day.Before(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)) }
	var fixImp, fixExp float64
	switch {
	case !on(2026, 1, 1):
		return 0, 0, false // no price in force yet
	case !on(2026, 2, 15):
		fixImp, fixExp = 0.30, 0.08 // all devices
	case !on(2026, 3, 20):
		fixImp, fixExp = 0.32, 0.07 // the device's own, from mid-month
	default: // time of use
		wd, hr := l.Weekday(), l.Hour()
		prev := (wd + 6) % 7
		sunThu := func(d time.Weekday) bool { return d <= time.Thursday }
		friSat := func(d time.Weekday) bool { return d >= time.Friday }
		workday := wd >= time.Monday && wd <= time.Friday
		switch {
		case sunThu(wd) && hr >= 22 || sunThu(prev) && hr < 6:
			fixImp, fixExp = 0.21, 0.05
		case friSat(wd) && hr >= 23 || friSat(prev) && hr < 7:
			fixImp, fixExp = 0.18, 0.04
		case workday && hr >= 17 && hr < 20:
			fixImp, fixExp = 0.45, 0.06
		default:
			fixImp, fixExp = 0.34, 0.06
		}
	}
	if p, ok := hourly[h]; ok {
		imp, _ = strconv.ParseFloat(p[0], 64)
		exp = fixExp
		if p[1] != "" {
			exp, _ = strconv.ParseFloat(p[1], 64)
		}
		return imp, exp, true
	}
	return fixImp, fixExp, true
}

// june is a month of hourly prices (local June in Brussels) with negative hours around
// noon, every fifth hour without an export price, and three hours missing.
func june(loc *time.Location) (hourPrices, []tariff.HourPrice, []time.Time) {
	missing := []time.Time{time.Date(2026, 6, 10, 12, 0, 0, 0, loc), time.Date(2026, 6, 20, 3, 0, 0, 0, loc),
		time.Date(2026, 6, 20, 4, 0, 0, 0, loc)}
	prices := hourPrices{}
	var list []tariff.HourPrice
	i := 0
	for h := time.Date(2026, 6, 1, 0, 0, 0, 0, loc); h.Before(time.Date(2026, 7, 1, 0, 0, 0, 0, loc)); h = h.Add(time.Hour) {
		i++
		skip := false
		for _, m := range missing {
			skip = skip || m.Equal(h)
		}
		if skip {
			continue
		}
		imp := fmt.Sprintf("%.4f", 0.05+0.0173*float64(i%17))
		if hr := h.In(loc).Hour(); hr >= 11 && hr < 15 {
			imp = fmt.Sprintf("-%.4f", 0.01+0.0031*float64(i%7)) // sunny noon: paid to consume
		}
		exp := fmt.Sprintf("%.4f", 0.02+0.0011*float64(i%13))
		if i%5 == 0 {
			exp = ""
		}
		prices[h.UTC()] = [2]string{imp, exp}
		list = append(list, tariff.HourPrice{Start: h, Import: imp, Export: exp})
	}
	return prices, list, missing
}

func setPrices(t *testing.T, s *tariff.Store, loc *time.Location) hourPrices {
	t.Helper()
	ctx := context.Background()
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	win := func(v, days string) tariff.TimeWindow {
		start, end, err := tariff.ParseWindow(v)
		if err != nil {
			t.Fatal(err)
		}
		d, err := tariff.ParseDays(days)
		if err != nil {
			t.Fatal(err)
		}
		return tariff.TimeWindow{Start: start, End: end, Days: d}
	}
	for _, p := range []tariff.Tariff{
		{DeviceID: tariff.AllDevices, Kind: tariff.Fixed, ValidFrom: date(2026, 1, 1), Import: "0.30", Export: "0.08"},
		{DeviceID: costDevice, Kind: tariff.Fixed, ValidFrom: date(2026, 2, 15), Import: "0.32", Export: "0.07"},
		{DeviceID: costDevice, Kind: tariff.Fixed, ValidFrom: date(2026, 3, 20), Import: "0.34", Export: "0.06"},
		{DeviceID: costDevice, Kind: tariff.Window, ValidFrom: date(2026, 3, 20), Import: "0.21", Export: "0.05", Window: win("22:00-06:00", "sun-thu")},
		{DeviceID: costDevice, Kind: tariff.Window, ValidFrom: date(2026, 3, 20), Import: "0.18", Export: "0.04", Window: win("23:00-07:00", "fri,sat")},
		{DeviceID: costDevice, Kind: tariff.Window, ValidFrom: date(2026, 3, 20), Import: "0.45", Export: "0.06", Window: win("17:00-20:00", "mon-fri")},
	} {
		p.Currency = "EUR"
		if _, _, err := s.Set(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	hourly, list, _ := june(loc)
	if _, err := s.Import(ctx, costDevice, "EUR", list); err != nil {
		t.Fatal(err)
	}
	return hourly
}

// wantMoney is a bucket's expected money, summed here hour by hour from the fixture.
type wantMoney struct {
	imp, exp, sav    float64
	priced, unpriced int64
	fallback         int64
}

func expectMoney(samples []telemetry.Sample, from, to time.Time, floor func(time.Time) time.Time,
	loc *time.Location, hourly hourPrices) (map[time.Time]*wantMoney, wantMoney) {
	type energy struct{ load, imp, exp float64 }
	hours := map[time.Time]*energy{}
	k := costInterval.Seconds() / 3_600_000
	for _, s := range samples {
		if s.TS.Before(from) || !s.TS.Before(to) {
			continue
		}
		h := s.TS.Truncate(time.Hour)
		if hours[h] == nil {
			hours[h] = &energy{}
		}
		c := float64(s.SampleCount)
		hours[h].load += s.LoadPowerW * c * k
		hours[h].imp += math.Max(-s.ExportPowerW, 0) * c * k
		hours[h].exp += math.Max(s.ExportPowerW, 0) * c * k
	}
	var first, last time.Time // the span of the hourly prices
	for h := range hourly {
		if first.IsZero() || h.Before(first) {
			first = h
		}
		if h.After(last) {
			last = h
		}
	}
	out := map[time.Time]*wantMoney{}
	var total wantMoney
	for h, e := range hours {
		b := floor(h).UTC()
		if out[b] == nil {
			out[b] = &wantMoney{}
		}
		w := out[b]
		imp, exp, ok := priceOf(h, loc, hourly)
		if !ok {
			w.unpriced++
			total.unpriced++
			continue
		}
		if _, has := hourly[h]; !has && len(hourly) > 0 && !h.Before(first) && !h.After(last) {
			w.fallback++
			total.fallback++
		}
		for _, m := range []*wantMoney{w, &total} {
			m.imp += e.imp * imp
			m.exp += e.exp * exp
			m.sav += (e.load - e.imp) * imp
			m.priced++
		}
	}
	return out, total
}

// checkMoney compares one money field: 1e-9 relative, and equal to the cent.
func checkMoney(t *testing.T, what string, got *float64, want float64, priced bool) {
	t.Helper()
	if !priced {
		if got != nil {
			t.Errorf("%s = %v, want null (no price in force)", what, *got)
		}
		return
	}
	if got == nil {
		t.Errorf("%s = null, want %v", what, want)
		return
	}
	if math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) || math.Round(*got*100) != math.Round(want*100) {
		t.Errorf("%s = %.12f, want %.12f", what, *got, want)
	}
}

func checkFrameMoney(t *testing.T, label string, res series.Result, want map[time.Time]*wantMoney, total wantMoney) {
	t.Helper()
	money := func(what string, m series.Money, w wantMoney) {
		p := w.priced > 0
		checkMoney(t, what+" grid_import_cost", m.GridImportCost, w.imp, p)
		checkMoney(t, what+" grid_export_revenue", m.GridExportRevenue, w.exp, p)
		checkMoney(t, what+" savings", m.Savings, w.sav, p)
		checkMoney(t, what+" net_cost", m.NetCost, w.imp-w.exp, p)
	}
	if len(res.Buckets) != len(want) {
		t.Fatalf("%s: %d buckets, want %d", label, len(res.Buckets), len(want))
	}
	for _, b := range res.Buckets {
		w := want[b.Bucket.UTC()]
		if w == nil {
			t.Fatalf("%s: unexpected bucket %s", label, b.Bucket)
		}
		money(label+" "+b.Bucket.Format(time.RFC3339), b.Money, *w)
	}
	money(label+" totals", res.Totals.Money, total)
	if res.Pricing.Currency == nil || *res.Pricing.Currency != "EUR" {
		t.Errorf("%s: currency %v, want EUR", label, res.Pricing.Currency)
	}
	if res.Pricing.FallbackHours != total.fallback || res.Pricing.UnpricedHours != total.unpriced {
		t.Errorf("%s: %d fallback and %d unpriced hours, want %d and %d", label,
			res.Pricing.FallbackHours, res.Pricing.UnpricedHours, total.fallback, total.unpriced)
	}
}

// TestMoneyHourByHour prices a device's energy with fixed prices changing mid-month,
// time-of-use windows past midnight over both Brussels DST nights, and a month of
// hourly prices with negative and missing hours: every money field of every frame
// equals the sum over hours computed here, on both backends, and on TimescaleDB the
// aggregates (partly materialized) and the raw samples agree.
func TestMoneyHourByHour(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	samples := costFixture()
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			samples := samples // this backend's own: a late sample joins it below
			is := is.New(t)
			ctx := context.Background()
			d := testenv.NewEmpty(t, b)
			// Daily and monthly aggregates in Brussels, so the aggregate path serves them.
			is.NoErr(db.New(d.Pool).SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: loc.String()}))
			testenv.Migrate(t, d.Pool)
			store := telemetry.NewStore(d.Pool)
			for rest := samples; len(rest) > 0; rest = rest[min(len(rest), 1000):] {
				_, err := store.Insert(ctx, costDevice, rest[:min(len(rest), 1000)])
				is.NoErr(err)
			}
			svc, info, err := series.Open(ctx, d.Pool, loc)
			is.NoErr(err)
			// Every fixture day is over by then, so its money may be kept.
			clock := func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
			svc = svc.WithInterval(series.FixedInterval(costInterval)).WithClock(clock)
			paths := map[string]*series.Service{"raw": series.NewRaw(d.Pool, loc).WithInterval(series.FixedInterval(costInterval)).WithClock(clock)}
			if b == testenv.TimescaleDB {
				is.Equal(info.Path, series.PathAggregates)
				// Materialized up to mid-August; the rest is real-time aggregation.
				for _, agg := range series.Aggregates {
					is.NoErr(series.Refresh(ctx, d.Pool, agg, time.Time{}, time.Date(2026, 8, 15, 0, 0, 0, 0, loc)))
				}
				paths["aggregates"] = svc
			} else {
				is.Equal(info.Path, series.PathRollup)
				paths["rollup"] = svc
			}

			date := func(v string) time.Time {
				dt, err := svc.ParseDate(v, time.Time{})
				is.NoErr(err)
				return dt
			}
			// Before any price: currency and every money field null.
			res, err := svc.Series(ctx, costDevice, "year", date("2026-01-01"))
			is.NoErr(err)
			is.True(res.Pricing.Currency == nil)
			is.True(res.Totals.GridImportCost == nil && res.Buckets[0].Savings == nil)

			prices := tariff.NewStore(d.Pool)
			hourly := setPrices(t, prices, loc)
			floors := map[string]func(time.Time) time.Time{
				"day":   func(t time.Time) time.Time { return series.Hourly.Floor(t, loc) },
				"week":  func(t time.Time) time.Time { return series.Daily.Floor(t, loc) },
				"month": func(t time.Time) time.Time { return series.Daily.Floor(t, loc) },
				"year":  func(t time.Time) time.Time { return series.Monthly.Floor(t, loc) },
				"all":   func(t time.Time) time.Time { return series.Monthly.Floor(t, loc) },
			}
			type frameCase struct {
				frame, date string
				from, to    time.Time
			}
			check := func(stage string, cases []frameCase) {
				t.Helper()
				for _, c := range cases {
					want, total := expectMoney(samples, c.from, c.to, floors[c.frame], loc, hourly)
					results := map[string]series.Result{}
					// Twice: the first answer prices its days on the fly, the second
					// reads the money the keeper kept in between (on the stored days).
					for pass := 1; pass <= 2; pass++ {
						for name, p := range paths {
							res, err := p.Series(ctx, costDevice, c.frame, date(c.date))
							is.NoErr(err)
							checkFrameMoney(t, fmt.Sprintf("%s: %s %s %s, pass %d", stage, name, c.frame, c.date, pass), res, want, total)
							results[name] = res
							if pass == 1 {
								_, err := p.KeepMoney(ctx, costDevice)
								is.NoErr(err)
							}
						}
					}
					agg, ok := results["aggregates"]
					if !ok {
						agg = results["rollup"]
					}
					raw := results["raw"]
					for i := range agg.Buckets {
						a, r := agg.Buckets[i].Money, raw.Buckets[i].Money
						if (a.Savings == nil) != (r.Savings == nil) || a.Savings != nil &&
							math.Abs(*a.Savings-*r.Savings) > 1e-12*math.Max(1, math.Abs(*r.Savings)) {
							t.Errorf("%s: %s %s bucket %d: stored days and raw samples disagree", stage, c.frame, c.date, i)
						}
					}
					is.Equal(agg.Pricing.FallbackHours, raw.Pricing.FallbackHours)
					is.Equal(agg.Pricing.UnpricedHours, raw.Pricing.UnpricedHours)
				}
			}
			check("prices set", []frameCase{
				{"day", "2025-12-31", date("2025-12-31"), date("2026-01-01")}, // no price yet
				{"day", "2026-02-15", date("2026-02-15"), date("2026-02-16")}, // the device's own price begins
				{"day", "2026-03-29", date("2026-03-29"), date("2026-03-30")}, // 23 hours
				{"day", "2026-06-20", date("2026-06-20"), date("2026-06-21")}, // missing hourly prices
				{"day", "2026-10-25", date("2026-10-25"), date("2026-10-26")}, // 25 hours
				{"week", "2026-03-29", date("2026-03-23"), date("2026-03-30")},
				{"week", "2026-10-25", date("2026-10-19"), date("2026-10-26")},
				{"month", "2026-01-10", date("2026-01-01"), date("2026-02-01")},
				{"month", "2026-02-10", date("2026-02-01"), date("2026-03-01")}, // prices change on the 15th
				{"month", "2026-03-10", date("2026-03-01"), date("2026-04-01")},
				{"month", "2026-06-10", date("2026-06-01"), date("2026-07-01")},
				{"month", "2026-10-10", date("2026-10-01"), date("2026-11-01")},
				{"year", "2025-06-01", date("2025-01-01"), date("2026-01-01")},
				{"year", "2026-06-01", date("2026-01-01"), date("2027-01-01")},
				{"all", "", date("1970-01-01"), date("2199-01-01")},
			})

			var kept int
			is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_money_daily").Scan(&kept))
			is.True(kept > 300) // the second passes read the days the keeper kept (the raw path keeps none)

			// The money kept for past days follows a price change (the June import
			// removed: June falls back to time of use) and a late sample.
			list, err := prices.List(ctx, costDevice)
			is.NoErr(err)
			for _, p := range list {
				if p.Kind == tariff.Hourly {
					is.NoErr(prices.Remove(ctx, p.ID))
				}
			}
			hourly = nil
			late := telemetry.Sample{DeviceID: costDevice, TS: time.Date(2026, 3, 10, 12, 5, 0, 0, time.UTC),
				PVPowerW: 100, BatteryPowerW: 0, LoadPowerW: 4000, ExportPowerW: -3000.5, SampleCount: 3}
			_, err = store.Insert(ctx, costDevice, []telemetry.Sample{late})
			is.NoErr(err)
			samples = append(samples[:len(samples):len(samples)], late)
			if b == testenv.TimescaleDB {
				for _, agg := range series.Aggregates {
					is.NoErr(series.Refresh(ctx, d.Pool, agg, time.Time{}, time.Date(2026, 8, 15, 0, 0, 0, 0, loc)))
				}
			}
			check("June import removed, a late sample", []frameCase{
				{"month", "2026-03-10", date("2026-03-01"), date("2026-04-01")},
				{"month", "2026-06-10", date("2026-06-01"), date("2026-07-01")},
				{"year", "2026-06-01", date("2026-01-01"), date("2027-01-01")},
				{"all", "", date("1970-01-01"), date("2199-01-01")},
			})
		})
	}
}
