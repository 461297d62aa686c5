package simulate_test

import (
	"math"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

func generate(t *testing.T, cfg simulate.Config) []telemetry.Sample {
	t.Helper()
	g, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var all []telemetry.Sample
	buf := make([]telemetry.Sample, 0, 777)
	for {
		buf = g.Next(buf, 777)
		if len(buf) == 0 {
			break
		}
		all = append(all, buf...)
	}
	if len(all) != g.Count() {
		t.Fatalf("generated %d samples, Count says %d", len(all), g.Count())
	}
	return all
}

func TestPhysicsHoldsForEverySample(t *testing.T) {
	winter := time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC) // a Monday
	summer := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		start      time.Time
		batteryKWh float64
		maxW       float64
		// At latitude 48° the sun is below the horizon before dawn and after dusk
		// (solar time = UTC here): 07:00–17:00 in mid January, 03:30–20:30 in mid June.
		dawn, dusk float64
	}{
		{"winter, big battery", winter, 10, 5000, 7, 17},
		{"summer, big battery", summer, 10, 5000, 3.5, 20.5},
		{"summer, small battery fills and empties", summer, 2, 3000, 3.5, 20.5},
		{"summer, no battery", summer, 0, 0, 3.5, 20.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			const interval = 30 * time.Second
			samples := generate(t, simulate.Config{
				DeviceID: "inverter-01", Start: tc.start, End: tc.start.Add(7 * 24 * time.Hour),
				Interval: interval, Seed: 42, Latitude: 48, Location: time.UTC,
				PVPeakW: 6000, BatteryKWh: tc.batteryKWh, BatteryMaxW: tc.maxW,
			})
			is.Equal(len(samples), 7*24*3600/30)

			var sawFull, sawEmpty bool
			noonPV := map[int]float64{}
			var prev telemetry.Sample
			for i, s := range samples {
				charge, discharge := math.Max(s.BatteryPowerW, 0), math.Max(-s.BatteryPowerW, 0)
				export, imp := math.Max(s.ExportPowerW, 0), math.Max(-s.ExportPowerW, 0)
				if d := (s.PVPowerW + discharge + imp) - (s.LoadPowerW + charge + export); math.Abs(d) > 0.5 {
					t.Fatalf("sample %d at %s: energy balance off by %g W: %+v", i, s.TS, d, s)
				}
				if s.BatterySoCPct < 0 || s.BatterySoCPct > 100 {
					t.Fatalf("sample %d at %s: SoC %g", i, s.TS, s.BatterySoCPct)
				}
				if math.Abs(s.BatteryPowerW) > tc.maxW {
					t.Fatalf("sample %d at %s: battery power %g over %g", i, s.TS, s.BatteryPowerW, tc.maxW)
				}
				if s.PVPowerW < 0 || s.LoadPowerW <= 0 {
					t.Fatalf("sample %d at %s: negative PV or no load: %+v", i, s.TS, s)
				}
				hour := float64(s.TS.Hour()) + float64(s.TS.Minute())/60
				if (hour < tc.dawn || hour >= tc.dusk) && s.PVPowerW != 0 {
					t.Fatalf("sample %d at %s: %g W of PV at night", i, s.TS, s.PVPowerW)
				}
				if s.TS.Hour() == 12 {
					noonPV[s.TS.YearDay()] = math.Max(noonPV[s.TS.YearDay()], s.PVPowerW)
				}
				if tc.batteryKWh == 0 {
					is.Equal(s.BatteryPowerW, 0.0)
				}
				sawFull = sawFull || s.BatterySoCPct == 100
				sawEmpty = sawEmpty || s.BatterySoCPct == 0

				// pv_daily_kwh counts from local midnight: it starts at 0 and only grows.
				is.True(s.PVDailyKWh != nil)
				if i > 0 {
					is.Equal(s.TS.Sub(prev.TS), interval)
					if s.TS.YearDay() == prev.TS.YearDay() {
						is.True(*s.PVDailyKWh >= *prev.PVDailyKWh)
					}
				}
				if s.TS.Hour() == 0 && s.TS.Minute() == 0 && s.TS.Second() == 0 {
					is.Equal(*s.PVDailyKWh, 0.0)
				}
				prev = s
			}
			is.Equal(len(noonPV), 7) // the sun shines at noon every day, however dimly
			for day, w := range noonPV {
				if w < 300 {
					t.Errorf("day %d: only %g W at noon", day, w)
				}
			}
			if tc.batteryKWh == 2 {
				is.True(sawFull)  // the small battery fills on a summer day...
				is.True(sawEmpty) // ...and is empty before dawn
			}
		})
	}
}

func TestDailyEnergyMatchesPower(t *testing.T) {
	is := is.New(t)
	start := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	samples := generate(t, simulate.Config{
		DeviceID: "d", Start: start, End: start.Add(24*time.Hour + time.Minute), Interval: time.Minute,
		Seed: 1, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000,
	})
	var wh float64
	for _, s := range samples[:24*60] {
		wh += s.PVPowerW / 60
	}
	next := samples[24*60] // the first sample of the next day restarts the counter
	is.Equal(*next.PVDailyKWh, 0.0)
	last := samples[24*60-1]
	is.True(math.Abs(*last.PVDailyKWh-wh/1000) < 0.2) // the counter is the day's energy
	is.True(wh > 10_000)                              // a June day gives a 6 kWp array well over 10 kWh
}

func TestDailyCounterFollowsLocalMidnight(t *testing.T) {
	is := is.New(t)
	zone := time.FixedZone("UTC+10", 10*3600)
	start := time.Date(2026, 1, 12, 12, 0, 0, 0, time.UTC) // 22:00 local
	samples := generate(t, simulate.Config{
		DeviceID: "d", Start: start, End: start.Add(4 * time.Hour), Interval: time.Minute,
		Seed: 1, Latitude: -33, Location: zone, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000,
	})
	// The first sample, at 22:00 local, already counts the day's sun (the simulation
	// starts at the local midnight before it) ...
	is.True(*samples[0].PVDailyKWh > 5)
	// ... and the counter restarts at 00:00 local, which is 14:00 UTC.
	is.Equal(*samples[120].PVDailyKWh, 0.0)
	is.Equal(samples[120].TS, time.Date(2026, 1, 12, 14, 0, 0, 0, time.UTC))
	is.True(*samples[119].PVDailyKWh > 5)
}

func TestSameSeedSameSamples(t *testing.T) {
	is := is.New(t)
	cfg := simulate.Config{
		DeviceID: "d", Start: time.Date(2026, 3, 1, 10, 0, 2, 0, time.UTC),
		End: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), Interval: 5 * time.Second,
		Seed: 7, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000,
	}
	a, b := generate(t, cfg), generate(t, cfg)
	is.Equal(a, b)
	is.Equal(a[0].TS, time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC)) // aligned to the interval

	cfg.Seed = 8
	c := generate(t, cfg)
	is.Equal(len(c), len(a))
	differ := 0
	for i := range a {
		if a[i].PVPowerW != c[i].PVPowerW || a[i].LoadPowerW != c[i].LoadPowerW {
			differ++
		}
	}
	is.True(differ > len(a)/2) // another seed is another installation's weather and habits
}

func TestInvalidConfig(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, cfg := range []simulate.Config{
		{DeviceID: "", Start: now, End: now.Add(time.Hour), Interval: time.Second},
		{DeviceID: "d", Start: now, End: now, Interval: time.Second},
		{DeviceID: "d", Start: now, End: now.Add(time.Hour), Interval: time.Millisecond},
		{DeviceID: "d", Start: now, End: now.Add(time.Hour), Interval: time.Second, Latitude: 91},
		{DeviceID: "d", Start: now, End: now.Add(time.Hour), Interval: time.Second, BatteryKWh: -1},
	} {
		_, err := simulate.New(cfg)
		is.True(err != nil)
	}
}

func TestLoadPeaksAndWeatherVary(t *testing.T) {
	is := is.New(t)
	start := time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC)
	samples := generate(t, simulate.Config{
		DeviceID: "d", Start: start, End: start.Add(28 * 24 * time.Hour), Interval: time.Minute,
		Seed: 5, Latitude: 48, PVPeakW: 6000, BatteryKWh: 10, BatteryMaxW: 5000,
	})
	var loadByHour [24]float64
	pvByDay := map[int]float64{}
	for _, s := range samples {
		loadByHour[s.TS.Hour()] += s.LoadPowerW
		pvByDay[s.TS.YearDay()] += s.PVPowerW / 60 / 1000
	}
	night, morning, evening := loadByHour[3], loadByHour[7], loadByHour[19]
	is.True(morning > 1.5*night) // people get up...
	is.True(evening > 2*night)   // ...and come home
	lo, hi := math.Inf(1), 0.0
	for _, kwh := range pvByDay {
		lo, hi = math.Min(lo, kwh), math.Max(hi, kwh)
	}
	is.True(lo < 0.6*hi) // overcast days and sunny days
	is.True(hi > 20)     // a sunny April day gives a 6 kWp array over 20 kWh
}
