// Package simulate makes up a plausible home solar + battery installation, so a
// newcomer, a demo or a load test has realistic telemetry without an inverter: PV that
// follows the sun with passing clouds, a house load with morning and evening peaks, a
// battery that charges from surplus and covers the load, and the grid as the balance.
// The samples go straight into the database or through POST /v1/ingest like a real
// edge daemon.
package simulate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// Config describes the installation and the time range to simulate.
type Config struct {
	DeviceID string
	// Start and End bound the samples: the first is at Start rounded up to a multiple
	// of Interval, the last before End.
	Start, End time.Time
	Interval   time.Duration
	Seed       uint64
	// Latitude in degrees, positive north; it sets day length and sun height.
	Latitude float64
	// Location is the local time zone: pv_daily_kwh restarts at its midnight and the
	// house keeps its hours. Solar noon is taken as 12:00 local standard time.
	Location *time.Location
	// PVPeakW is what the array gives in full clear sun.
	PVPeakW float64
	// BatteryKWh is the usable capacity; 0 means no battery.
	BatteryKWh float64
	// BatteryMaxW bounds charging and discharging power.
	BatteryMaxW float64
}

// Defaults for a typical installation: 6 kWp on the roof, a 10 kWh battery with a
// 5 kW inverter, somewhere in central Europe.
const (
	DefaultLatitude    = 48.0
	DefaultPVPeakW     = 6000
	DefaultBatteryKWh  = 10
	DefaultBatteryMaxW = 5000
)

// batteryEfficiency is the one-way efficiency: a charge of 1 kWh stores 0.95 kWh and a
// discharge of 1 kWh takes 1/0.95 kWh from the cells.
const batteryEfficiency = 0.95

func (c Config) validate() error {
	var errs []error
	if c.DeviceID == "" {
		errs = append(errs, errors.New("device id is empty"))
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %s: want at least 1s", c.Interval))
	}
	if !c.End.After(c.Start) {
		errs = append(errs, fmt.Errorf("end %s is not after start %s", c.End.Format(time.RFC3339), c.Start.Format(time.RFC3339)))
	}
	if math.IsNaN(c.Latitude) || c.Latitude < -90 || c.Latitude > 90 {
		errs = append(errs, fmt.Errorf("latitude %g: want -90 to 90", c.Latitude))
	}
	if !(c.PVPeakW >= 0) || !(c.BatteryKWh >= 0) || !(c.BatteryMaxW >= 0) {
		errs = append(errs, errors.New("PV peak, battery capacity and battery power must be 0 or more"))
	}
	return errors.Join(errs...)
}

// Generator produces the samples of a Config in time order, a batch at a time, so a
// month at 5 s never has to fit in memory.
type Generator struct {
	cfg  Config
	rng  *rand.Rand
	next time.Time // the time of the next step
	dtH  float64   // the interval in hours

	socWh     float64 // energy in the battery
	capWh     float64
	dayKWh    float64 // PV energy since local midnight
	day       int     // local year*1000+yearday of dayKWh
	clearness float64 // of the current day: 1 clear, ~0.3 overcast
	cloud     float64 // passing clouds, a mean-reverting random walk
	tempC     float64 // battery temperature
	appliance applianceRun
	flows     flowSums // of the samples yielded so far, for Ledger
}

// flowSums are power sums over samples in W·samples, split by sign per sample as the
// server splits them.
type flowSums struct{ pv, load, imp, exp, charge, discharge float64 }

// Ledger is the exact energy of the samples a Generator has yielded. The generator
// knows every sample's flows, so this is what GET /v1/series must total to over them.
type Ledger struct {
	series.Energy
	// BatteryLossKWh is what the battery's conversion took: charge × (1 − η) +
	// discharge × (1/η − 1), η the one-way efficiency. The samples are measured outside
	// the battery, so the series' balance_kwh stays within it.
	BatteryLossKWh float64 `json:"battery_loss_kwh"`
}

// applianceRun is a kettle, oven or washing machine: a block of power for a while.
type applianceRun struct {
	watts float64
	until time.Time
}

// New returns a generator for cfg. It starts its physics at the local midnight before
// cfg.Start, so the first day's pv_daily_kwh and state of charge are already what they
// would be at that time of day.
func New(cfg Config) (*Generator, error) {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	first := cfg.Start.Truncate(cfg.Interval)
	if first.Before(cfg.Start) {
		first = first.Add(cfg.Interval)
	}
	cfg.Start = first
	local := first.In(cfg.Location)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, cfg.Location)
	g := &Generator{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed50a1)),
		next:  midnight.Truncate(cfg.Interval),
		dtH:   cfg.Interval.Hours(),
		capWh: cfg.BatteryKWh * 1000,
		tempC: 20,
		day:   -1,
	}
	g.socWh = g.capWh * 0.3
	for g.next.Before(first) {
		g.step()
	}
	return g, nil
}

// Count is how many samples the generator yields in all.
func (g *Generator) Count() int {
	if !g.cfg.End.After(g.cfg.Start) {
		return 0
	}
	return int((g.cfg.End.Sub(g.cfg.Start)-1)/g.cfg.Interval) + 1
}

// First is the time of the first sample.
func (g *Generator) First() time.Time { return g.cfg.Start }

// Next appends up to n further samples to buf[:0] and returns it; an empty result
// means the range is done.
func (g *Generator) Next(buf []telemetry.Sample, n int) []telemetry.Sample {
	buf = buf[:0]
	for len(buf) < n && g.next.Before(g.cfg.End) {
		s := g.step()
		g.flows.pv += s.PVPowerW
		g.flows.load += s.LoadPowerW
		g.flows.imp += math.Max(-s.ExportPowerW, 0)
		g.flows.exp += math.Max(s.ExportPowerW, 0)
		g.flows.charge += math.Max(s.BatteryPowerW, 0)
		g.flows.discharge += math.Max(-s.BatteryPowerW, 0)
		buf = append(buf, s)
	}
	return buf
}

// Ledger is the energy of every sample Next has returned so far (each stands for one
// interval: sample_count 1).
func (g *Generator) Ledger() Ledger {
	kwh := func(wSamples float64) float64 { return wSamples * g.cfg.Interval.Seconds() / 3_600_000 }
	e := series.Energy{
		PVKWh: kwh(g.flows.pv), LoadKWh: kwh(g.flows.load),
		GridImportKWh: kwh(g.flows.imp), GridExportKWh: kwh(g.flows.exp),
		BatteryChargeKWh: kwh(g.flows.charge), BatteryDischargeKWh: kwh(g.flows.discharge),
	}
	return Ledger{Energy: e, BatteryLossKWh: e.BatteryChargeKWh*(1-batteryEfficiency) +
		e.BatteryDischargeKWh*(1/batteryEfficiency-1)}
}

// step advances the installation by one interval and returns the sample at its start.
func (g *Generator) step() telemetry.Sample {
	ts := g.next
	g.next = ts.Add(g.cfg.Interval)
	local := ts.In(g.cfg.Location)

	if day := local.Year()*1000 + local.YearDay(); day != g.day {
		g.day = day
		g.dayKWh = 0
		g.newDay()
	}

	pv := math.Round(g.pv(local))
	load := math.Round(g.load(local, ts))

	// The battery takes the surplus and covers the deficit, within its power and its
	// room or charge; the grid takes or gives whatever is left.
	battery := 0.0 // positive: charging
	if g.capWh > 0 {
		if surplus := pv - load; surplus > 0 {
			room := (g.capWh - g.socWh) / batteryEfficiency / g.dtH
			battery = math.Floor(math.Min(surplus, math.Min(g.cfg.BatteryMaxW, room)))
			g.socWh += battery * batteryEfficiency * g.dtH
		} else {
			stored := g.socWh * batteryEfficiency / g.dtH
			battery = -math.Floor(math.Min(-surplus, math.Min(g.cfg.BatteryMaxW, stored)))
			g.socWh += battery / batteryEfficiency * g.dtH
		}
		g.socWh = math.Min(math.Max(g.socWh, 0), g.capWh)
		battery += 0 // -0 (an empty battery, nothing to give) would encode as "-0"
	}
	export := pv - load - battery // positive: export

	// The cells warm with the power through them and cool toward the room.
	target := 18 + math.Abs(battery)/1000*2.5
	g.tempC += (target - g.tempC) * math.Min(1, g.dtH/0.75)

	s := telemetry.Sample{
		DeviceID:      g.cfg.DeviceID,
		TS:            ts.UTC(),
		PVPowerW:      pv,
		PVDailyKWh:    ptr(math.Round(g.dayKWh*100) / 100),
		BatteryPowerW: battery,
		BatterySoCPct: 0,
		LoadPowerW:    load,
		ExportPowerW:  export,
		SampleCount:   1,
	}
	if g.capWh > 0 {
		s.BatterySoCPct = math.Min(100, math.Max(0, math.Round(g.socWh/g.capWh*1000)/10))
		s.BatteryTempC = ptr(math.Round(g.tempC*10) / 10)
	}
	// The counter at ts holds what came before ts; this interval's energy shows next.
	g.dayKWh += pv * g.dtH / 1000
	return s
}

// newDay draws the weather of a day: mostly sunny, partly cloudy or overcast.
func (g *Generator) newDay() {
	switch r := g.rng.Float64(); {
	case r < 0.4:
		g.clearness = 0.9 + 0.1*g.rng.Float64()
	case r < 0.8:
		g.clearness = 0.55 + 0.3*g.rng.Float64()
	default:
		g.clearness = 0.15 + 0.3*g.rng.Float64()
	}
}

// pv is the array's power at a local time: clear-sky power for the sun's height,
// dimmed by the day's weather and passing clouds.
func (g *Generator) pv(local time.Time) float64 {
	// Passing clouds: an Ornstein-Uhlenbeck walk with a 10-minute memory, the same in
	// distribution whatever the interval.
	const tau = 10.0 / 60 // hours
	decay := math.Exp(-g.dtH / tau)
	g.cloud = g.cloud*decay + math.Sqrt(1-decay*decay)*g.rng.NormFloat64()

	sinElev := sunElevationSin(g.cfg.Latitude, local)
	if sinElev <= 0 {
		return 0
	}
	// Air mass thins the light near the horizon (Meinel's clear-sky model, normalised
	// to 1 with the sun overhead).
	airMass := 1 / math.Max(sinElev, 0.05)
	clearSky := sinElev * math.Pow(0.7, math.Pow(airMass, 0.678)) / 0.7
	// A cloud shades the array when the walk is high; how often and how deeply depends
	// on the day's weather.
	shade := 1 / (1 + math.Exp(-3*(g.cloud-(g.clearness*2-0.6))))
	transmission := 1 - shade*(0.85-0.35*g.clearness)
	transmission *= 0.4 + 0.6*g.clearness
	p := g.cfg.PVPeakW * clearSky * transmission * (1 + 0.01*g.rng.NormFloat64())
	return math.Max(p, 0)
}

// sunElevationSin is the sine of the sun's elevation at a local time and latitude,
// taking local standard time as solar time.
func sunElevationSin(latitude float64, local time.Time) float64 {
	hour := float64(local.Hour()) + float64(local.Minute())/60 + float64(local.Second())/3600
	if local.IsDST() {
		hour-- // the clock runs an hour ahead of the sun in summer time
	}
	declination := 23.44 * math.Pi / 180 * math.Sin(2*math.Pi*float64(284+local.YearDay())/365)
	hourAngle := (hour - 12) * 15 * math.Pi / 180
	lat := latitude * math.Pi / 180
	return math.Sin(lat)*math.Sin(declination) + math.Cos(lat)*math.Cos(declination)*math.Cos(hourAngle)
}

// load is the house's power at a local time: a base load, a morning and an evening
// peak (later at weekends), a little noise and appliances now and then.
func (g *Generator) load(local, ts time.Time) float64 {
	hour := float64(local.Hour()) + float64(local.Minute())/60 + float64(local.Second())/3600
	weekend := local.Weekday() == time.Saturday || local.Weekday() == time.Sunday
	morning, evening := 7.0, 19.0
	if weekend {
		morning = 9
	}
	bump := func(center, width float64) float64 {
		d := (hour - center) / width
		return math.Exp(-d * d / 2)
	}
	w := 250 + 900*bump(morning, 1) + 1500*bump(evening, 1.5) + 250*bump(13, 1.5)

	// An appliance starts with a chance per hour, so the rate does not depend on the
	// interval, and more likely when people are up.
	if !ts.Before(g.appliance.until) {
		g.appliance = applianceRun{}
		awake := 0.0
		if hour >= 6.5 && hour < 23 {
			awake = 1
		}
		if g.rng.Float64() < 0.35*awake*g.dtH {
			g.appliance = applianceRun{
				watts: 1000 + 1500*g.rng.Float64(),
				until: ts.Add(time.Duration((3 + 40*g.rng.Float64()) * float64(time.Minute))),
			}
		}
	}
	w += g.appliance.watts
	w *= 1 + 0.03*g.rng.NormFloat64()
	return math.Max(w, 80)
}

func ptr(v float64) *float64 { return &v }
