package series

import (
	"context"
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
