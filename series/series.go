// Package series answers GET /v1/series: it maps each frame to the aggregate, bucket
// size and range that serve it (one table, frames below), and reads the buckets either
// from the TimescaleDB continuous aggregates or, where they are absent or were built in
// another time zone, from the raw samples, with the same numbers either way. Each bucket
// and each frame carries its energy in kWh (Energy, Flows), from per-sign power sums the
// queries return and the device's sample interval applied here, and its money at the
// prices of package tariff, priced hour by hour (Money, cost.go).
package series

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sungrow/sungrow/db"
)

// Bucket is one point of a series. Averages are weighted by sample_count.
type Bucket struct {
	Bucket           time.Time `json:"bucket"`
	AvgPVPowerW      float64   `json:"avg_pv_power_w"`
	MaxPVPowerW      float64   `json:"max_pv_power_w"`
	AvgBatteryPowerW float64   `json:"avg_battery_power_w"`
	AvgBatterySoCPct float64   `json:"avg_battery_soc_pct"`
	AvgLoadPowerW    float64   `json:"avg_load_power_w"`
	AvgExportPowerW  float64   `json:"avg_export_power_w"`
	SampleCount      int64     `json:"sample_count"`
	Flows
	Money
}

// Energy is what flowed over a span, in kWh. A sample stands for sample_count × the
// device's sample interval at its powers; grid and battery flows are split by sign per
// sample before summing, so opposite flows inside a bucket never net out.
type Energy struct {
	PVKWh               float64 `json:"pv_kwh"`
	LoadKWh             float64 `json:"load_kwh"`
	GridImportKWh       float64 `json:"grid_import_kwh"`       // from export_power_w < 0
	GridExportKWh       float64 `json:"grid_export_kwh"`       // from export_power_w > 0
	BatteryChargeKWh    float64 `json:"battery_charge_kwh"`    // from battery_power_w > 0
	BatteryDischargeKWh float64 `json:"battery_discharge_kwh"` // from battery_power_w < 0
}

// Flows is the energy of a bucket or a frame and the figures that follow from it.
type Flows struct {
	Energy
	// SelfConsumptionPct is 100 × (pv − export) / pv, clamped to 0–100; nil without pv.
	SelfConsumptionPct *float64 `json:"self_consumption_pct"`
	// AutarkyPct is 100 × (load − import) / load, clamped to 0–100; nil without load.
	AutarkyPct *float64 `json:"autarky_pct"`
	// BalanceKWh is pv + import + discharge − load − charge − export: what the
	// measurements leave unexplained (conversion losses, meter error).
	BalanceKWh float64 `json:"balance_kwh"`
	// PVInverterKWh is the inverter's own figure: for each local day the largest
	// pv_daily_kwh reported, summed over the days. Nil on hourly buckets and where no
	// sample carries the counter.
	PVInverterKWh *float64 `json:"pv_inverter_kwh"`
}

// Result is one frame: its buckets, ascending, the flows and money over all of them,
// and what stands behind the money.
type Result struct {
	Buckets []Bucket
	Totals  Totals
	Pricing Pricing
}

// sums are a span's energy sums in W·samples, as the queries return them.
type sums struct {
	pv, load, gridImport, gridExport, charge, discharge float64
	inverter                                            *float64 // kWh; nil: no counter
}

func (a *sums) add(b sums) {
	a.pv += b.pv
	a.load += b.load
	a.gridImport += b.gridImport
	a.gridExport += b.gridExport
	a.charge += b.charge
	a.discharge += b.discharge
	if b.inverter != nil {
		v := *b.inverter
		if a.inverter != nil {
			v += *a.inverter
		}
		a.inverter = &v
	}
}

// flows converts sums to kWh for samples that each stand for interval.
func (a sums) flows(interval time.Duration) Flows {
	kwh := func(wSamples float64) float64 { return positiveZero(wSamples * interval.Seconds() / 3_600_000) }
	e := Energy{
		PVKWh: kwh(a.pv), LoadKWh: kwh(a.load), GridImportKWh: kwh(a.gridImport),
		GridExportKWh: kwh(a.gridExport), BatteryChargeKWh: kwh(a.charge), BatteryDischargeKWh: kwh(a.discharge),
	}
	return Flows{
		Energy:             e,
		SelfConsumptionPct: pct(e.PVKWh-e.GridExportKWh, e.PVKWh),
		AutarkyPct:         pct(e.LoadKWh-e.GridImportKWh, e.LoadKWh),
		BalanceKWh: e.PVKWh + e.GridImportKWh + e.BatteryDischargeKWh -
			e.LoadKWh - e.BatteryChargeKWh - e.GridExportKWh,
		PVInverterKWh: a.inverter,
	}
}

// positiveZero turns -0 into 0 and leaves every other value as it is. The queries'
// greatest(-x, 0) gives -0 for an idle battery or grid, and the sums keep it; JSON and
// CSV would print it as -0, which reads as a sign error.
func positiveZero(v float64) float64 {
	if v == 0 {
		return 0
	}
	return v
}

// pct is 100 × part / whole clamped to 0–100, nil when whole is 0.
func pct(part, whole float64) *float64 {
	if whole == 0 {
		return nil
	}
	v := min(max(100*part/whole, 0), 100)
	return &v
}

// IntervalFunc says how long one reading of a device stands for (SAMPLE_INTERVAL_S,
// or the device's own setting).
type IntervalFunc func(deviceID string) time.Duration

// DefaultSampleInterval is the edge daemons' polling period (SAMPLE_INTERVAL_S unset).
const DefaultSampleInterval = 5 * time.Second

// FixedInterval is an IntervalFunc that gives every device d.
func FixedInterval(d time.Duration) IntervalFunc {
	return func(string) time.Duration { return d }
}

// Aggregate names a continuous aggregate.
type Aggregate string

const (
	Hourly  Aggregate = "sungrow_hourly"
	Daily   Aggregate = "sungrow_daily"
	Monthly Aggregate = "sungrow_monthly"
)

// Aggregates in refresh order: each is built on the one before.
var Aggregates = []Aggregate{Hourly, Daily, Monthly}

// unit is the date_trunc unit of an aggregate's buckets, for the raw path.
func (a Aggregate) unit() string {
	switch a {
	case Hourly:
		return "hour"
	case Daily:
		return "day"
	}
	return "month"
}

// Floor returns the start of the bucket of a that holds t; hours are UTC hours, days
// and months begin at local midnight in loc.
func (a Aggregate) Floor(t time.Time, loc *time.Location) time.Time {
	switch a {
	case Hourly:
		return t.UTC().Truncate(time.Hour)
	case Daily:
		t = t.In(loc)
		return dayStart(t.Year(), t.Month(), t.Day(), loc)
	}
	t = t.In(loc)
	return dayStart(t.Year(), t.Month(), 1, loc)
}

// Next returns the start of the bucket after the one starting at start.
func (a Aggregate) Next(start time.Time, loc *time.Location) time.Time {
	switch a {
	case Hourly:
		return start.Add(time.Hour)
	case Daily:
		s := start.In(loc)
		return dayStart(s.Year(), s.Month(), s.Day()+1, loc)
	}
	s := start.In(loc)
	return dayStart(s.Year(), s.Month()+1, 1, loc)
}

// dayStart is the first instant of the local day y-m-d (normalized, so day 32 is the
// next month's first) in loc. Where clocks jump over midnight (America/Santiago in
// spring), time.Date gives an instant of the evening before; PostgreSQL and TimescaleDB
// begin the day at the first instant after the gap, and so does this.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // the normalized date
	for i := 0; i < 24*60 && t.YearDay() != want.YearDay(); i++ {
		t = t.Add(time.Minute) // still the evening before: walk to the day's first minute
	}
	return t
}

// frame says how one frame is served: from which aggregate (whose bucket size it
// takes) over which range around the chosen date (a local midnight in the zone).
type frame struct {
	agg  Aggregate
	span func(date time.Time) (from, to time.Time)
}

// The whole of "all": before any inverter and after any plausible sample.
var (
	allFrom = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	allTo   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// frames is the one table of what each frame means; validFrames lists it in order.
var frames = map[string]frame{
	"day": {Hourly, func(d time.Time) (time.Time, time.Time) {
		return d, dayStart(d.Year(), d.Month(), d.Day()+1, d.Location())
	}},
	"week": {Daily, func(d time.Time) (time.Time, time.Time) {
		monday := d.Day() - (int(d.Weekday())+6)%7
		return dayStart(d.Year(), d.Month(), monday, d.Location()),
			dayStart(d.Year(), d.Month(), monday+7, d.Location())
	}},
	"month": {Daily, func(d time.Time) (time.Time, time.Time) {
		return dayStart(d.Year(), d.Month(), 1, d.Location()), dayStart(d.Year(), d.Month()+1, 1, d.Location())
	}},
	"year": {Monthly, func(d time.Time) (time.Time, time.Time) {
		return dayStart(d.Year(), 1, 1, d.Location()), dayStart(d.Year()+1, 1, 1, d.Location())
	}},
	"all": {Monthly, func(time.Time) (time.Time, time.Time) { return allFrom, allTo }},
}

var validFrames = []string{"day", "week", "month", "year", "all"}

// ErrUnknownFrame is returned for a frame not in the table.
var ErrUnknownFrame = fmt.Errorf("want one of %s", strings.Join(validFrames, ", "))

// CheckFrame returns ErrUnknownFrame unless name is in the frame table.
func CheckFrame(name string) error {
	if _, ok := frames[name]; !ok {
		return ErrUnknownFrame
	}
	return nil
}

// ErrBadDate is returned for a date that is not YYYY-MM-DD.
var ErrBadDate = errors.New("want a date as YYYY-MM-DD, e.g. 2026-02-15")

// Path says where series come from.
type Path string

const (
	// PathAggregates reads the continuous aggregates.
	PathAggregates Path = "aggregates"
	// PathHourlyRollup reads the hourly aggregate and sums it into days and months in
	// SUNGROW_TZ, because the daily and monthly ones were built in another zone.
	PathHourlyRollup Path = "hourly aggregate rolled up (aggregates built in another zone)"
	// PathRollup reads plain PostgreSQL's rollup: hours summed from its 15-minute
	// sungrow_rollup, days and months from its local days (sungrow_rollup_daily) where
	// they are kept in SUNGROW_TZ, else from the quarter hours.
	PathRollup Path = "rollup (plain PostgreSQL)"
	// PathRaw computes everything from sungrow_samples.
	PathRaw Path = "raw samples"
)

// Info is what Open found, for serve to say once at start.
type Info struct {
	Path Path
	// AggregateZone is the zone the daily and monthly aggregates were built in; empty
	// without aggregates.
	AggregateZone string
}

// Service reads series.
type Service struct {
	q    *db.Queries
	loc  *time.Location
	path Path
	// hourZone is the zone hourly buckets are truncated in: UTC, unless UTC hours do
	// not nest in loc's days (Asia/Kolkata), where they are loc's own hours.
	hourZone string
	interval IntervalFunc
	// now says which local days are over, so their money may be kept.
	now func() time.Time
}

func newService(q *db.Queries, loc *time.Location, path Path) *Service {
	hourZone := loc.String()
	if wholeHourZone(loc) {
		hourZone = "UTC" // as in the hourly aggregate, on every path
	}
	return &Service{q: q, loc: loc, path: path, hourZone: hourZone, interval: FixedInterval(DefaultSampleInterval),
		now: time.Now}
}

// WithInterval returns a copy of s that reads each device's sample interval from f
// (default: DefaultSampleInterval for every device).
func (s *Service) WithInterval(f IntervalFunc) *Service {
	c := *s
	c.interval = f
	return &c
}

// WithReads returns a copy of s whose queries go to conn (a replicas.Set's DBTX), for
// reads only: the path is the one s chose on the primary, and KeepMoney is called on
// s, which writes the primary.
func (s *Service) WithReads(conn db.DBTX) *Service {
	c := *s
	c.q = db.New(conn)
	return &c
}

// WithClock returns a copy of s whose clock is now (default: time.Now).
func (s *Service) WithClock(now func() time.Time) *Service {
	c := *s
	c.now = now
	return &c
}

// Open looks at the database once to choose the path: the aggregates if they exist,
// were built in loc and loc is a whole-hour zone; the hourly aggregate rolled up if
// they were built in another whole-hour zone; else the raw samples.
func Open(ctx context.Context, conn db.DBTX, loc *time.Location) (*Service, Info, error) {
	q := db.New(conn)
	present, err := q.AggregatesPresent(ctx)
	if err != nil {
		return nil, Info{}, fmt.Errorf("look for the series aggregates: %w", err)
	}
	if !present {
		rollup, err := q.RollupPresent(ctx)
		if err != nil {
			return nil, Info{}, fmt.Errorf("look for the series rollup: %w", err)
		}
		if rollup && quarterHourZone(loc) {
			return newService(q, loc, PathRollup), Info{Path: PathRollup}, nil
		}
		return newService(q, loc, PathRaw), Info{Path: PathRaw}, nil
	}
	zone, err := q.AggregateZone(ctx)
	if err != nil {
		return nil, Info{}, fmt.Errorf("read the zone of the series aggregates: %w", err)
	}
	path := PathAggregates
	switch {
	case !wholeHourZone(loc):
		// The aggregates' hours are UTC hours, which do not nest in the days of a
		// zone such as Asia/Kolkata: only the raw samples give exact local days.
		path = PathRaw
	case zone != loc.String():
		path = PathHourlyRollup
	}
	return newService(q, loc, path), Info{Path: path, AggregateZone: zone}, nil
}

// NewRaw returns a Service that always reads the raw samples (for comparisons).
func NewRaw(conn db.DBTX, loc *time.Location) *Service {
	return newService(db.New(conn), loc, PathRaw)
}

// wholeHourZone reports whether loc's offsets over recent and coming years are whole
// hours, so UTC hours nest in its days.
func wholeHourZone(loc *time.Location) bool { return offsetsDivide(loc, 3600) }

// quarterHourZone reports whether loc's offsets over recent and coming years are
// multiples of 15 minutes, so the rollup's UTC quarter hours nest in its hours and
// days (every zone in use since 2000: Asia/Kolkata, Asia/Kathmandu, Australia/Eucla).
func quarterHourZone(loc *time.Location) bool { return offsetsDivide(loc, 900) }

func offsetsDivide(loc *time.Location, seconds int) bool {
	for y := 1990; y <= 2040; y++ {
		for _, m := range []time.Month{time.January, time.July} {
			if _, off := time.Date(y, m, 1, 0, 0, 0, 0, loc).Zone(); off%seconds != 0 {
				return false
			}
		}
	}
	return true
}

// Location is the zone days begin in.
func (s *Service) Location() *time.Location { return s.loc }

// ParseDate reads a YYYY-MM-DD date as local midnight in the service's zone; empty
// means today.
func (s *Service) ParseDate(v string, now time.Time) (time.Time, error) {
	if v == "" {
		t := now.In(s.loc)
		return dayStart(t.Year(), t.Month(), t.Day(), s.loc), nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil || d.Year() < 1970 || d.Year() >= 2200 {
		return time.Time{}, ErrBadDate
	}
	return dayStart(d.Year(), d.Month(), d.Day(), s.loc), nil
}

// Series returns the frame that covers date (a local midnight from ParseDate): its
// buckets, ascending, each stamped in the service's zone, and its totals.
func (s *Service) Series(ctx context.Context, deviceID, frameName string, date time.Time) (Result, error) {
	f, ok := frames[frameName]
	if !ok {
		return Result{}, ErrUnknownFrame
	}
	from, to := f.span(date)
	rows, err := s.read(ctx, f.agg, deviceID, from, to)
	if err != nil {
		return Result{}, fmt.Errorf("read %s series of %q from %s: %w", frameName, deviceID, s.path, err)
	}
	money, pricing, err := s.costs(ctx, f.agg, deviceID, from, to)
	if err != nil {
		return Result{}, fmt.Errorf("%s money of %q from %s: %w", frameName, deviceID, s.path, err)
	}
	interval := s.interval(deviceID)
	res := Result{Buckets: make([]Bucket, len(rows)), Pricing: pricing}
	var total sums
	var totalMoney moneySums
	for i, r := range rows {
		sm := sums{pv: r.SumPvPowerW, load: r.SumLoadPowerW, gridImport: r.SumGridImportW,
			gridExport: r.SumGridExportW, charge: r.SumBatteryChargeW, discharge: r.SumBatteryDischargeW}
		if !math.IsNaN(r.PvInverterKwh) { // NaN: no counter (see queries/series.sql)
			v := positiveZero(r.PvInverterKwh)
			sm.inverter = &v
		}
		total.add(sm)
		res.Buckets[i] = Bucket{
			Bucket: r.Bucket.In(s.loc), AvgPVPowerW: positiveZero(r.AvgPvPowerW), MaxPVPowerW: positiveZero(r.MaxPvPowerW),
			AvgBatteryPowerW: positiveZero(r.AvgBatteryPowerW), AvgBatterySoCPct: positiveZero(r.AvgBatterySocPct),
			AvgLoadPowerW: positiveZero(r.AvgLoadPowerW), AvgExportPowerW: positiveZero(r.AvgExportPowerW),
			SampleCount: r.SampleCount, Flows: sm.flows(interval),
		}
		if m, ok := money[r.Bucket.Unix()]; ok {
			res.Buckets[i].Money = m.money(interval)
			totalMoney.add(m)
		}
	}
	res.Totals = Totals{Flows: total.flows(interval), Money: totalMoney.money(interval)}
	return res, nil
}

// AllTime is the energy of the device's whole history: the totals of frame=all.
func (s *Service) AllTime(ctx context.Context, deviceID string) (Energy, error) {
	res, err := s.Series(ctx, deviceID, "all", time.Time{})
	if err != nil {
		return Energy{}, err
	}
	return res.Totals.Energy, nil
}

// read runs the one query that serves agg's buckets on this service's path. The row
// types of the queries are identical, so each converts to db.SeriesRawRow.
func (s *Service) read(ctx context.Context, agg Aggregate, device string, from, to time.Time) ([]db.SeriesRawRow, error) {
	zone := s.loc.String()
	if agg == Hourly {
		zone = s.hourZone
	}
	switch {
	case s.path == PathRaw && agg == Hourly:
		return convert(s.q.SeriesRawHourly(ctx, db.SeriesRawHourlyParams{Zone: zone, DeviceID: device, FromTs: from, ToTs: to}))
	case s.path == PathRollup:
		return convert(s.q.SeriesRollup(ctx, db.SeriesRollupParams{Unit: agg.unit(), Zone: zone, DeviceID: device, FromTs: from, ToTs: to}))
	case s.path == PathRaw:
		return s.q.SeriesRaw(ctx, db.SeriesRawParams{Unit: agg.unit(), Zone: zone, DeviceID: device, FromTs: from, ToTs: to})
	case agg == Hourly:
		return convert(s.q.SeriesHourly(ctx, db.SeriesHourlyParams{DeviceID: device, FromTs: from, ToTs: to}))
	case s.path == PathHourlyRollup:
		return convert(s.q.SeriesRollupHourly(ctx, db.SeriesRollupHourlyParams{Unit: agg.unit(), Zone: zone, DeviceID: device, FromTs: from, ToTs: to}))
	case agg == Daily:
		return convert(s.q.SeriesDaily(ctx, db.SeriesDailyParams{DeviceID: device, FromTs: from, ToTs: to}))
	default:
		return convert(s.q.SeriesMonthly(ctx, db.SeriesMonthlyParams{DeviceID: device, FromTs: from, ToTs: to}))
	}
}

type row interface {
	db.SeriesHourlyRow | db.SeriesDailyRow | db.SeriesMonthlyRow | db.SeriesRollupHourlyRow | db.SeriesRawHourlyRow |
		db.SeriesRollupRow
}

func convert[R row](rows []R, err error) ([]db.SeriesRawRow, error) {
	if err != nil {
		return nil, err
	}
	out := make([]db.SeriesRawRow, len(rows))
	for i, r := range rows {
		out[i] = db.SeriesRawRow(r)
	}
	return out, nil
}
