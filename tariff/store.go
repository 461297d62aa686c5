package tariff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
)

// Tariff is one stored price: a fixed price or a time-of-use window from a date on,
// or one import of hourly prices.
type Tariff struct {
	ID       int64
	DeviceID string // AllDevices: every device without prices of its own
	Kind     Kind
	// ValidFrom is the local date (in SUNGROW_TZ, as a UTC midnight) a fixed price or
	// window applies from, until the next date of the same device.
	ValidFrom      time.Time
	Window         TimeWindow // Kind Window only
	Import, Export string     // per kWh, as written; Kind Fixed and Window
	Currency       string
	// Hours, First and Last describe an import (First and Last: the first and the
	// last hour it prices).
	Hours       int64
	First, Last time.Time
}

// lockKey serializes the checks and writes of set, import and remove.
const lockKey int64 = 0x7461726966660a // "tariff"

// Store writes and lists prices.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// inTx runs fn in one transaction holding the tariff lock, and marks the money series
// kept for past days stale: all or nothing is written.
func (s *Store) inTx(ctx context.Context, fn func(q *db.Queries) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := q.TariffLock(ctx, lockKey); err != nil {
			return fmt.Errorf("lock the tariffs: %w", err)
		}
		if err := q.BumpPricesVersion(ctx); err != nil {
			return fmt.Errorf("mark the money kept for past days stale: %w", err)
		}
		return fn(q)
	})
}

// checkCurrency refuses a currency other than the one the prices device sees are in:
// a device has one currency, and prices for all devices are seen by every device.
func checkCurrency(ctx context.Context, q *db.Queries, device, currency string) error {
	have, err := q.TariffCurrencies(ctx, device)
	if err != nil {
		return fmt.Errorf("read the currencies of the prices: %w", err)
	}
	for _, c := range have {
		if c != currency {
			who := "device " + device + " and all devices"
			if device == AllDevices {
				who = "the devices"
			}
			return fmt.Errorf("currency %s: prices of %s are in %s, and a device has one currency (remove them first, or use --currency %s)",
				currency, who, strings.Join(have, ", "), c)
		}
	}
	return nil
}

// Set stores a fixed price (t.Kind Fixed) or a window (Window) of t.DeviceID from
// t.ValidFrom, after checking that the currency agrees, that the date has no fixed
// price yet, and that a window overlaps no other window of the same date. It returns
// the new id and how many hours of the week the date's prices leave without a price.
func (s *Store) Set(ctx context.Context, t Tariff) (id int64, unpriced int, err error) {
	from := t.ValidFrom.Format(time.DateOnly)
	err = s.inTx(ctx, func(q *db.Queries) error {
		if err := checkCurrency(ctx, q, t.DeviceID, t.Currency); err != nil {
			return err
		}
		rows, err := q.TariffsFrom(ctx, db.TariffsFromParams{DeviceID: t.DeviceID, ValidFrom: from})
		if err != nil {
			return fmt.Errorf("read the prices from %s: %w", from, err)
		}
		windows := []TimeWindow{}
		fixed := t.Kind == Fixed
		for _, r := range rows {
			if Kind(r.Kind) == Fixed {
				if t.Kind == Fixed {
					return fmt.Errorf("%s already has a fixed price from %s (id %d): remove it first", scope(t.DeviceID), from, r.ID)
				}
				fixed = true
				continue
			}
			w := TimeWindow{Start: int(*r.StartHour), End: int(*r.EndHour), Days: Days(*r.Days)}
			if t.Kind == Window {
				if d, h, ok := overlap(w, t.Window); ok {
					return fmt.Errorf("--window %s --days %s overlaps window %s %s (id %d) of %s from %s at %s %02d:00",
						t.Window, t.Window.Days, w, w.Days, r.ID, scope(t.DeviceID), from, d, h)
				}
			}
			windows = append(windows, w)
		}
		p := db.InsertTariffParams{DeviceID: t.DeviceID, Kind: string(t.Kind), ValidFrom: &from,
			ImportPrice: &t.Import, ExportPrice: &t.Export, Currency: t.Currency}
		if t.Kind == Window {
			windows = append(windows, t.Window)
			start, end, days := int16(t.Window.Start), int16(t.Window.End), int16(t.Window.Days)
			p.StartHour, p.EndHour, p.Days = &start, &end, &days
		}
		if id, err = q.InsertTariff(ctx, p); err != nil {
			return fmt.Errorf("insert the price: %w", err)
		}
		if !fixed {
			unpriced = uncovered(windows)
		}
		return nil
	})
	return id, unpriced, err
}

// uncovered counts the hours of a week no window covers.
func uncovered(windows []TimeWindow) int {
	n := 0
	for d := time.Sunday; d <= time.Saturday; d++ {
		for h := 0; h < 24; h++ {
			covered := false
			for _, w := range windows {
				covered = covered || w.Covers(d, h)
			}
			if !covered {
				n++
			}
		}
	}
	return n
}

func scope(device string) string {
	if device == AllDevices {
		return "all devices"
	}
	return "device " + device
}

// Import stores hourly prices of device as one import, in one statement: an hour
// priced before takes this import's price. It returns the import's id.
func (s *Store) Import(ctx context.Context, device, currency string, prices []HourPrice) (int64, error) {
	if len(prices) == 0 {
		return 0, errors.New("no prices to import")
	}
	p := db.InsertHourlyPricesParams{DeviceID: device, Starts: make([]time.Time, len(prices)),
		ImportPrices: make([]string, len(prices)), ExportPrices: make([]string, len(prices))}
	for i, hp := range prices {
		p.Starts[i], p.ImportPrices[i], p.ExportPrices[i] = hp.Start, hp.Import, hp.Export
	}
	var id int64
	err := s.inTx(ctx, func(q *db.Queries) error {
		if err := checkCurrency(ctx, q, device, currency); err != nil {
			return err
		}
		var err error
		if id, err = q.InsertTariff(ctx, db.InsertTariffParams{DeviceID: device, Kind: string(Hourly), Currency: currency}); err != nil {
			return fmt.Errorf("insert the import: %w", err)
		}
		p.TariffID = id
		if _, err := q.InsertHourlyPrices(ctx, p); err != nil {
			return fmt.Errorf("insert %d hourly prices: %w", len(prices), err)
		}
		if _, err := q.DeleteEmptyImports(ctx); err != nil {
			return fmt.Errorf("drop imports whose hours were all replaced: %w", err)
		}
		return nil
	})
	return id, err
}

// List returns the prices of device and of all devices (AllDevices: every price),
// grouped by device, in the order they take effect.
func (s *Store) List(ctx context.Context, device string) ([]Tariff, error) {
	q := db.New(s.pool)
	rows, err := q.ListTariffs(ctx, device)
	if err != nil {
		return nil, fmt.Errorf("list the prices: %w", err)
	}
	var imports []int64
	out := make([]Tariff, len(rows))
	for i, r := range rows {
		t := Tariff{ID: r.ID, DeviceID: r.DeviceID, Kind: Kind(r.Kind), Import: r.ImportPrice, Export: r.ExportPrice, Currency: r.Currency}
		if r.ValidFrom != "" {
			if t.ValidFrom, err = time.Parse(time.DateOnly, r.ValidFrom); err != nil {
				return nil, fmt.Errorf("price %d: date %q: %w", r.ID, r.ValidFrom, err)
			}
		}
		if t.Kind == Window {
			t.Window = TimeWindow{Start: int(*r.StartHour), End: int(*r.EndHour), Days: Days(*r.Days)}
		}
		if t.Kind == Hourly {
			imports = append(imports, t.ID)
		}
		out[i] = t
	}
	if len(imports) > 0 {
		hours, err := q.ImportedHours(ctx, imports)
		if err != nil {
			return nil, fmt.Errorf("count the imported hours: %w", err)
		}
		for _, h := range hours {
			for i := range out {
				if out[i].ID == h.TariffID {
					out[i].Hours, out[i].First, out[i].Last = h.Hours, h.FirstStart, h.LastStart
				}
			}
		}
	}
	return out, nil
}

// ErrNoSuchTariff is returned by Remove for an id no price has.
var ErrNoSuchTariff = errors.New("no price has this id (see sungrow tariff list)")

// Remove deletes one price, or one import with all its hours.
func (s *Store) Remove(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(q *db.Queries) error {
		n, err := q.DeleteTariff(ctx, id)
		if err != nil {
			return fmt.Errorf("remove price %d: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("remove price %d: %w", id, ErrNoSuchTariff)
		}
		return nil
	})
}
