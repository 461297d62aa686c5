package series

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sungrow/sungrow/db"
)

// Verification compares each stored level of buckets with what it is computed from,
// bucket by bucket, because a stored bucket can be wrong without anything failing
// (upstream timescale/timescaledb#10296 drops zone buckets on some refreshes). The
// types below are the interface the TimescaleDB aggregates (monthly against its days,
// daily against its hours, hourly against the raw samples) and plain PostgreSQL's
// rollup (against the raw samples) both implement; `sungrow verify` and serve's audit
// run every Level the database has.

// FieldDiff is one sum or count of a bucket that differs from the level below.
type FieldDiff struct {
	Field    string  `json:"field"`    // e.g. "sample_count", "sum_pv_power_w"
	Stored   float64 `json:"stored"`   // what the level holds
	Expected float64 `json:"expected"` // what the level below adds up to
}

// Mismatch is one bucket of a level that differs from the level below it: missing
// (the level below has samples there, the level has no row), extra (a row with
// nothing below it), or differing in Fields.
type Mismatch struct {
	Level    string      `json:"aggregate"` // the level's name, e.g. "sungrow_monthly"
	DeviceID string      `json:"device_id"`
	Bucket   time.Time   `json:"bucket"` // the bucket's start, in the zone its days begin in
	Missing  bool        `json:"missing,omitempty"`
	Extra    bool        `json:"extra,omitempty"`
	Fields   []FieldDiff `json:"fields,omitempty"`
}

// Level is one stored level of buckets that can be checked against its source and
// recomputed.
type Level interface {
	// Name is the level's table or aggregate name, as Mismatch.Level gives it.
	Name() string
	// Compare returns the buckets of device ("" for every device) starting in
	// [from, to) that differ from the level below.
	Compare(ctx context.Context, conn db.DBTX, device string, from, to time.Time) ([]Mismatch, error)
	// Repair recomputes exactly the buckets of ms (all of this level) from the level
	// below. It must not run inside a transaction on TimescaleDB.
	Repair(ctx context.Context, conn db.DBTX, ms []Mismatch) error
}

// Levels returns the stored levels of this database, finest first, so a repair of one
// is in place before the level above is checked against it: on TimescaleDB the hourly
// aggregate against the raw samples, the daily one against its hours and the monthly
// one against its local days (loc: the zone they were built in); otherwise
// plainLevels, which may be none.
func Levels(ctx context.Context, conn db.DBTX, loc *time.Location) ([]Level, error) {
	present, err := db.New(conn).AggregatesPresent(ctx)
	if err != nil {
		return nil, fmt.Errorf("look for the series aggregates: %w", err)
	}
	if !present {
		return plainLevels(ctx, conn)
	}
	return []Level{aggregateLevel{Hourly, loc}, aggregateLevel{Daily, loc}, aggregateLevel{Monthly, loc}}, nil
}

// RawSourced is implemented by a Level computed straight from the raw samples:
// checking it reads every sample of the window, so by default it is checked over the
// recent past only (DefaultRawFrom), where samples still arrive and change.
type RawSourced interface {
	FromRawSamples() bool
}

// rawLookback is how far back the levels computed from the raw samples are checked by
// default: more than a month, so the current and the previous month's last days are in.
const rawLookback = 35 * 24 * time.Hour

// DefaultRawFrom is where a check of the levels computed from the raw samples begins
// by default: 35 days before now, or earlier where a chunk compression has not reached
// yet begins, but never below the raw retention horizon (the hours below it keep
// their buckets while their samples are gone).
func DefaultRawFrom(ctx context.Context, conn db.DBTX, now time.Time) (time.Time, error) {
	from := now.Add(-rawLookback)
	// Only TimescaleDB (migration 5) has chunks; plain PostgreSQL's rollup checks the
	// look-back alone.
	chunked, err := db.New(conn).RawHorizonPresent(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("look for the raw chunks: %w", err)
	}
	if chunked {
		oldest, err := db.New(conn).OldestUncompressedChunk(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("find the uncompressed chunks: %w", err)
		}
		if len(oldest) > 0 && oldest[0].Before(from) {
			from = oldest[0]
		}
	}
	horizon, err := RawHorizon(ctx, conn)
	if err != nil {
		return time.Time{}, err
	}
	return AboveRawHorizon(Hourly, from, horizon), nil
}

// Span says over which [from, to) each level is checked.
type Span func(Level) (from, to time.Time)

// Check compares every level over its span and returns what differs, level by level.
func Check(ctx context.Context, conn db.DBTX, levels []Level, device string, span Span) ([]Mismatch, error) {
	var all []Mismatch
	for _, l := range levels {
		from, to := span(l)
		ms, err := l.Compare(ctx, conn, device, from, to)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	return all, nil
}

// Mend compares each level, finest first, and recomputes the buckets that differ
// before it checks the next, so a level is mended against a level below that is right
// already. It returns what it found and recomputed. The caller holds RefreshLockKey:
// TimescaleDB refuses two refreshes of one aggregate at once.
func Mend(ctx context.Context, conn db.DBTX, levels []Level, device string, span Span) ([]Mismatch, error) {
	var found []Mismatch
	for _, l := range levels {
		from, to := span(l)
		ms, err := l.Compare(ctx, conn, device, from, to)
		if err != nil {
			return found, err
		}
		if len(ms) == 0 {
			continue
		}
		if err := l.Repair(ctx, conn, ms); err != nil {
			return found, err
		}
		found = append(found, ms...)
	}
	return found, nil
}

// Fields of every aggregate bucket verification compares, in the order of the arrays
// queries/verify.sql returns. The averages are left out: they are these sums divided
// by sample_count. The last is the inverter counter: the hour's largest pv_daily_kwh,
// the day's largest of those, the month's sum of its days'.
var (
	verifiedFields = []string{"sample_count", "max_pv_power_w", "sum_pv_power_w", "sum_battery_power_w",
		"sum_battery_soc_pct", "sum_load_power_w", "sum_export_power_w", "sum_grid_import_w", "sum_grid_export_w",
		"sum_battery_charge_w", "sum_battery_discharge_w"}
	hourlyFields = append(slices.Clip(verifiedFields), "max_pv_daily_kwh")
	rollupFields = append(slices.Clip(verifiedFields), "pv_inverter_kwh")
)

// tolerance is how far apart, relative, two float sums of the same values may be: the
// levels add them in another order, which changes the last bits (about 1e-15).
const tolerance = 1e-9

// aggregateLevel is one continuous aggregate, checked against the level it is built on.
type aggregateLevel struct {
	agg Aggregate
	loc *time.Location
}

func (l aggregateLevel) Name() string { return string(l.agg) }

func (l aggregateLevel) FromRawSamples() bool { return l.agg == Hourly }

// pair is one bucket as the level holds it and as the level below adds it up; nil: no row.
type pair struct {
	device           string
	bucket           time.Time
	stored, expected []float64
}

func (l aggregateLevel) Compare(ctx context.Context, conn db.DBTX, device string, from, to time.Time) ([]Mismatch, error) {
	if from.IsZero() {
		from = allFrom
	}
	// Whole buckets: from's bucket up to the end of the bucket holding the last instant.
	from, to = l.agg.Floor(from, l.loc), l.agg.Next(l.agg.Floor(to.Add(-time.Nanosecond), l.loc), l.loc)
	if !from.Before(to) {
		return nil, nil
	}
	q := db.New(conn)
	var pairs []pair
	switch l.agg {
	case Hourly:
		rows, err := q.VerifyHourly(ctx, db.VerifyHourlyParams{FromTs: from, ToTs: to, DeviceID: device})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", l.agg, err)
		}
		for _, r := range rows {
			pairs = append(pairs, pair{r.DeviceID, r.Bucket, r.Stored, r.Expected})
		}
	case Daily:
		rows, err := q.VerifyDaily(ctx, db.VerifyDailyParams{FromTs: from, ToTs: to, DeviceID: device, Zone: l.loc.String()})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", l.agg, err)
		}
		for _, r := range rows {
			pairs = append(pairs, pair{r.DeviceID, r.Bucket, r.Stored, r.Expected})
		}
	case Monthly:
		rows, err := q.VerifyMonthly(ctx, db.VerifyMonthlyParams{FromTs: from, ToTs: to, DeviceID: device, Zone: l.loc.String()})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", l.agg, err)
		}
		for _, r := range rows {
			pairs = append(pairs, pair{r.DeviceID, r.Bucket, r.Stored, r.Expected})
		}
	}
	fields := rollupFields
	if l.agg == Hourly {
		fields = hourlyFields
	}
	var out []Mismatch
	for _, p := range pairs {
		if m, differs := diff(string(l.agg), fields, p); differs {
			m.Bucket = m.Bucket.In(l.loc)
			out = append(out, m)
		}
	}
	return out, nil
}

// diff tells whether a bucket differs from the level below, and how.
func diff(level string, fields []string, p pair) (Mismatch, bool) {
	m := Mismatch{Level: level, DeviceID: p.device, Bucket: p.bucket}
	switch {
	case p.stored == nil:
		m.Missing = true
		return m, true
	case p.expected == nil:
		m.Extra = true
		return m, true
	}
	for i, name := range fields {
		s, e := p.stored[i], p.expected[i]
		if !same(s, e) {
			m.Fields = append(m.Fields, FieldDiff{Field: name, Stored: s, Expected: e})
		}
	}
	return m, len(m.Fields) > 0
}

// same is equality to tolerance, with NaN (no inverter counter) equal only to NaN.
func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tolerance*math.Max(math.Abs(a), math.Abs(b))
}

// Repair recomputes the buckets of ms, one forced refresh per run of adjacent buckets
// (a refresh recomputes every device's buckets in its window: the others' are right
// already and stay so), and forgets the money kept for the days of each run.
func (l aggregateLevel) Repair(ctx context.Context, conn db.DBTX, ms []Mismatch) error {
	starts := make([]time.Time, 0, len(ms))
	for _, m := range ms {
		starts = append(starts, m.Bucket)
	}
	slices.SortFunc(starts, time.Time.Compare)
	starts = slices.CompactFunc(starts, time.Time.Equal)
	for i := 0; i < len(starts); {
		from, to := starts[i], l.agg.Next(starts[i], l.loc)
		for i++; i < len(starts) && starts[i].Equal(to); i++ {
			to = l.agg.Next(starts[i], l.loc)
		}
		if err := Recompute(ctx, conn, l.agg, from, to); err != nil {
			return fmt.Errorf("repair: %w", err)
		}
		// Sums recomputed with their sample counts unchanged would leave the money kept
		// for those days looking valid.
		if err := db.New(conn).ForgetKeptMoney(ctx, db.ForgetKeptMoneyParams{DeviceIds: []string{""},
			FromTs: []time.Time{from}, ToTs: []time.Time{to}}); err != nil {
			return fmt.Errorf("repair: forget the money kept from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
	}
	return nil
}

// What says in a few words how the bucket differs: "missing", "extra", or each
// differing field with what it holds and what the level below adds up to.
func (m Mismatch) What() string {
	switch {
	case m.Missing:
		return "missing (the level below has samples here)"
	case m.Extra:
		return "extra (nothing below it)"
	}
	var b strings.Builder
	for i, f := range m.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %v, expected %v", f.Field, f.Stored, f.Expected)
	}
	return b.String()
}
