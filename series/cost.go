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
	imp, exp, sav := a.importCost*k, a.exportRevenue*k, a.savings*k
	net := imp - exp
	return Money{GridImportCost: &imp, GridExportRevenue: &exp, Savings: &sav, NetCost: &net}
}

// costs reads the money of agg's buckets over [from, to) on this service's path, keyed
// by bucket start (Unix seconds), or nothing when the device has no prices.
func (s *Service) costs(ctx context.Context, agg Aggregate, device string, from, to time.Time) (map[int64]moneySums, Pricing, error) {
	currency, err := s.q.DeviceCurrency(ctx, device)
	if err != nil {
		return nil, Pricing{}, fmt.Errorf("read the currency: %w", err)
	}
	if currency == "" {
		return nil, Pricing{}, nil
	}
	bucketZone := s.loc.String()
	if agg == Hourly {
		bucketZone = s.hourZone
	}
	var rows []db.CostsRawRow
	if s.path == PathRaw {
		rows, err = s.q.CostsRaw(ctx, db.CostsRawParams{HourZone: s.hourZone, DeviceID: device, FromTs: from, ToTs: to,
			Zone: s.loc.String(), Unit: agg.unit(), BucketZone: bucketZone})
	} else {
		var hourly []db.CostsHourlyRow
		hourly, err = s.q.CostsHourly(ctx, db.CostsHourlyParams{DeviceID: device, FromTs: from, ToTs: to,
			Zone: s.loc.String(), Unit: agg.unit(), BucketZone: bucketZone})
		rows = make([]db.CostsRawRow, len(hourly))
		for i, r := range hourly {
			rows[i] = db.CostsRawRow(r)
		}
	}
	if err != nil {
		return nil, Pricing{}, fmt.Errorf("price the hours: %w", err)
	}
	p := Pricing{Currency: &currency}
	out := make(map[int64]moneySums, len(rows))
	for _, r := range rows {
		p.FallbackHours += r.FallbackHours
		p.UnpricedHours += r.UnpricedHours
		out[r.Bucket.Unix()] = moneySums{importCost: r.ImportCost, exportRevenue: r.ExportRevenue,
			savings: r.Savings, priced: r.PricedHours}
	}
	return out, p, nil
}
