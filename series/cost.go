package series

import (
	"context"
	"fmt"
	"time"

	"github.com/sungrow/sungrow/db"
)

// Money is what a bucket's or a frame's energy cost and earned at the prices in force
// (`sungrow tariff`), in Pricing's currency. It is summed hour by hour, each hour's
// kWh times that hour's price, so time-of-use and hourly prices apply exactly; nil
// where no hour of the span had a price.
type Money struct {
	// GridImportCost is Σ grid_import_kwh × import price.
	GridImportCost *float64 `json:"grid_import_cost"`
	// GridExportRevenue is Σ grid_export_kwh × export price.
	GridExportRevenue *float64 `json:"grid_export_revenue"`
	// Savings is Σ (load_kwh − grid_import_kwh) × import price: what the house did not
	// have to buy thanks to the panels and the battery.
	Savings *float64 `json:"savings"`
	// NetCost is GridImportCost − GridExportRevenue.
	NetCost *float64 `json:"net_cost"`
}

// Totals is a frame's flows and money.
type Totals struct {
	Flows
	Money
}

// Pricing says what stands behind a frame's money.
type Pricing struct {
	// Currency is the ISO 4217 code of the device's prices; nil without prices (then
	// every money field is nil and the counts are 0).
	Currency *string `json:"currency"`
	// FallbackHours counts the hours of the frame with energy that had no hourly price
	// although they lie within the hourly prices in use, and so took the fixed or
	// time-of-use price in force.
	FallbackHours int64 `json:"price_fallback_hours"`
	// UnpricedHours counts the hours of the frame with energy and no price in force;
	// the money fields leave them out.
	UnpricedHours int64 `json:"unpriced_hours"`
}

// moneySums are a span's money in W·samples × price per kWh, as the queries return it.
type moneySums struct {
	importCost, exportRevenue, savings float64
	priced                             int64
}

func (a *moneySums) add(b moneySums) {
	a.importCost += b.importCost
	a.exportRevenue += b.exportRevenue
	a.savings += b.savings
	a.priced += b.priced
}

// money converts the sums for samples that each stand for interval.
func (a moneySums) money(interval time.Duration) Money {
	if a.priced == 0 {
		return Money{}
	}
	k := interval.Seconds() / 3_600_000 // W·samples → kWh
	imp, exp, sav := positiveZero(a.importCost*k), positiveZero(a.exportRevenue*k), positiveZero(a.savings*k)
	net := imp - exp
	return Money{GridImportCost: &imp, GridExportRevenue: &exp, Savings: &sav, NetCost: &net}
}

// costs reads the money of agg's buckets over [from, to) on this service's path, keyed
// by bucket start (Unix seconds), or nothing when the device has no prices.
func (s *Service) costs(ctx context.Context, agg Aggregate, device string, from, to time.Time) (map[int64]moneySums, Pricing, error) {
	pr, err := s.q.DevicePricing(ctx, device)
	if err != nil {
		return nil, Pricing{}, fmt.Errorf("read the currency: %w", err)
	}
	if pr.Currency == "" {
		return nil, Pricing{}, nil
	}
	m := money{p: Pricing{Currency: &pr.Currency}, buckets: map[int64]moneySums{}}
	if !s.keepsMoney() || agg == Hourly {
		zone := s.loc.String()
		if agg == Hourly {
			zone = s.hourZone
		}
		rows, err := s.price(ctx, agg.unit(), zone, device, from, to)
		if err != nil {
			return nil, Pricing{}, err
		}
		for _, r := range rows {
			m.add(r.Bucket, r)
		}
		return m.buckets, m.p, nil
	}
	if _, err := s.costsByDay(ctx, agg, device, from, to, &m); err != nil {
		return nil, Pricing{}, err
	}
	return m.buckets, m.p, nil
}

// money gathers priced rows into buckets and the frame's hour counts.
type money struct {
	p       Pricing
	buckets map[int64]moneySums
}

func (m *money) add(bucket time.Time, r db.CostsRawRow) {
	m.p.FallbackHours += r.FallbackHours
	m.p.UnpricedHours += r.UnpricedHours
	b := m.buckets[bucket.Unix()]
	b.add(moneySums{importCost: r.ImportCost, exportRevenue: r.ExportRevenue, savings: r.Savings, priced: r.PricedHours})
	m.buckets[bucket.Unix()] = b
}

// maxPricedRuns bounds the queries one answer spends on days not kept: beyond it, the
// span from the first such day to the last is priced in one.
const maxPricedRuns = 8

// keepsMoney reports whether this path keeps money per local day: the aggregates and
// plain PostgreSQL's rollup, whose days are stored; the raw samples and the hourly
// aggregate rolled up into another zone price every read hour by hour.
func (s *Service) keepsMoney() bool { return s.path == PathAggregates || s.path == PathRollup }

// costsByDay sums the money of daily and monthly buckets from the money kept per local
// day (sungrow_money_daily), pricing hour by hour only the days without a valid one,
// which it returns (one row per day) and never stores: a read writes nothing, so it
// may run on a read-only replica. KeepMoney stores them, on the primary. The days come
// from the daily aggregate (or the rollup's days), so a day without samples costs
// nothing.
func (s *Service) costsByDay(ctx context.Context, agg Aggregate, device string, from, to time.Time, m *money) ([]db.CostsRawRow, error) {
	zone := s.loc.String()
	var days []db.DaySampleCountsRow
	var err error
	if s.path == PathRollup {
		// The rollup's days are read as a week or month frame reads them.
		var rows []db.SeriesRawRow
		rows, err = s.read(ctx, Daily, device, from, to)
		for _, r := range rows {
			days = append(days, db.DaySampleCountsRow{Day: r.Bucket, SampleCount: r.SampleCount})
		}
	} else {
		days, err = s.q.DaySampleCounts(ctx, db.DaySampleCountsParams{DeviceID: device, FromTs: from, ToTs: to})
	}
	if err != nil {
		return nil, fmt.Errorf("read the days with samples: %w", err)
	}
	kept, err := s.q.KeptMoney(ctx, db.KeptMoneyParams{DeviceID: device, FromTs: from, ToTs: to, Zone: zone})
	if err != nil {
		return nil, fmt.Errorf("read the money kept per day: %w", err)
	}
	// A kept day counts while it was priced from as many samples as the day has now.
	valid := make(map[int64]db.KeptMoneyRow, len(kept))
	for _, k := range kept {
		valid[k.Day.Unix()] = k
	}
	isKept := func(d db.DaySampleCountsRow) bool {
		k, ok := valid[d.Day.Unix()]
		return ok && k.SampleCount == d.SampleCount
	}
	// Runs of consecutive days (among the days with samples) without kept money.
	var runs []span
	for i, d := range days {
		if isKept(d) {
			continue
		}
		if i > 0 && !isKept(days[i-1]) {
			runs[len(runs)-1].to = Daily.Next(d.Day, s.loc)
			continue
		}
		runs = append(runs, span{d.Day, Daily.Next(d.Day, s.loc)})
	}
	if len(runs) > maxPricedRuns {
		runs = []span{{runs[0].from, runs[len(runs)-1].to}}
	}
	for _, d := range days {
		if isKept(d) && !inRuns(d.Day, runs) {
			k := valid[d.Day.Unix()]
			m.add(agg.Floor(d.Day, s.loc), db.CostsRawRow{PricedHours: k.PricedHours, UnpricedHours: k.UnpricedHours,
				FallbackHours: k.FallbackHours, ImportCost: k.ImportCost, ExportRevenue: k.ExportRevenue, Savings: k.Savings})
		}
	}
	var priced []db.CostsRawRow
	for _, r := range runs {
		rows, err := s.price(ctx, "day", zone, device, r.from, r.to)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			m.add(agg.Floor(row.Bucket, s.loc), row)
		}
		priced = append(priced, rows...)
	}
	return priced, nil
}

// KeepMoney prices the days of device that are over and have no valid money kept, and
// keeps them in sungrow_money_daily, so that reads find them priced. It is the only
// writer of that table and runs on the primary (MoneyKeeper), never within a read. It
// keeps nothing on a path without stored days (keepsMoney), where reads use none.
func (s *Service) KeepMoney(ctx context.Context, device string) (days int, err error) {
	if !s.keepsMoney() {
		return 0, nil
	}
	// The version is read before the pricing: a price change racing it leaves rows of
	// the old version, which are never used.
	pr, err := s.q.DevicePricing(ctx, device)
	if err != nil {
		return 0, fmt.Errorf("read the currency of %q: %w", device, err)
	}
	if pr.Currency == "" {
		return 0, nil
	}
	today := Daily.Floor(s.now(), s.loc) // days from today on are not over: never kept
	m := money{buckets: map[int64]moneySums{}}
	priced, err := s.costsByDay(ctx, Daily, device, allFrom, today, &m)
	if err != nil {
		return 0, fmt.Errorf("price the days of %q: %w", device, err)
	}
	if len(priced) == 0 {
		return 0, nil
	}
	keep := db.KeepMoneyDaysParams{DeviceID: device, Zone: s.loc.String(), PricesVersion: pr.PricesVersion}
	for _, row := range priced {
		keep.Days = append(keep.Days, row.Bucket)
		keep.SampleCounts = append(keep.SampleCounts, row.SampleCount)
		keep.PricedHours = append(keep.PricedHours, row.PricedHours)
		keep.UnpricedHours = append(keep.UnpricedHours, row.UnpricedHours)
		keep.FallbackHours = append(keep.FallbackHours, row.FallbackHours)
		keep.ImportCosts = append(keep.ImportCosts, row.ImportCost)
		keep.ExportRevenues = append(keep.ExportRevenues, row.ExportRevenue)
		keep.Savings = append(keep.Savings, row.Savings)
	}
	if err := s.q.KeepMoneyDays(ctx, keep); err != nil {
		return 0, fmt.Errorf("keep the money of %d days of %q: %w", len(keep.Days), device, err)
	}
	return len(keep.Days), nil
}

// span is a half-open time range [from, to).
type span struct{ from, to time.Time }

// inRuns reports whether t falls in one of the spans.
func inRuns(t time.Time, runs []span) bool {
	for _, r := range runs {
		if !t.Before(r.from) && t.Before(r.to) {
			return true
		}
	}
	return false
}

// price runs the hour-by-hour pricing of [from, to) on this service's path, summed
// into unit buckets beginning in bucketZone.
func (s *Service) price(ctx context.Context, unit, bucketZone, device string, from, to time.Time) ([]db.CostsRawRow, error) {
	var rows []db.CostsRawRow
	var err error
	if s.path == PathRaw || s.path == PathRollup {
		var hours []db.SeriesRawRow
		if hours, err = s.read(ctx, Hourly, device, from, to); err != nil {
			return nil, fmt.Errorf("read the hours from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		p := db.CostsRawParams{DeviceID: device, Zone: s.loc.String(), Unit: unit, BucketZone: bucketZone}
		for _, h := range hours {
			p.Hours = append(p.Hours, h.Bucket)
			p.LoadW = append(p.LoadW, h.SumLoadPowerW)
			p.ImportW = append(p.ImportW, h.SumGridImportW)
			p.ExportW = append(p.ExportW, h.SumGridExportW)
			p.Samples = append(p.Samples, h.SampleCount)
		}
		rows, err = s.q.CostsRaw(ctx, p)
	} else {
		var hourly []db.CostsHourlyRow
		hourly, err = s.q.CostsHourly(ctx, db.CostsHourlyParams{DeviceID: device, FromTs: from, ToTs: to,
			Zone: s.loc.String(), Unit: unit, BucketZone: bucketZone})
		rows = make([]db.CostsRawRow, len(hourly))
		for i, r := range hourly {
			rows[i] = db.CostsRawRow(r)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("price the hours from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return rows, nil
}
