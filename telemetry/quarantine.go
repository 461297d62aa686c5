package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/db"
)

// A sample can be malformed (not JSON, a wrong type, a missing field: its client is
// broken and its whole batch is refused) or well formed but implausible: a reading an
// inverter really sent with a wrong clock or a failed register read. Implausible samples
// are set aside in the quarantine instead of refusing their batch, because an edge
// re-sends a refused batch forever and so one bad reading would hold back every later
// one of its house.

// MinTS is the earliest plausible reading: an inverter stamping an earlier time has a
// reset clock (1970, 2000-01-01), and such a sample would stretch every "all" series
// back decades and send the aggregate refresh over all of them.
var MinTS = time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)

// MaxFuture is how far ahead of the server's clock a sample may be stamped: beyond it
// the inverter's clock is wrong and the sample would pollute tomorrow's series.
const MaxFuture = 24 * time.Hour

// Reasons a sample is implausible: stable codes, stored in the quarantine and used as
// metric labels.
const (
	ReasonClockBehind      = "clock_behind"       // ts before MinTS
	ReasonClockAhead       = "clock_ahead"        // ts more than MaxFuture ahead
	ReasonSoCOutOfRange    = "soc_out_of_range"   // battery_soc_pct outside 0-100
	ReasonSampleCountBelow = "sample_count_below" // sample_count below 1
)

// ReasonDetail says in words what a reason code means, for answers and logs.
func ReasonDetail(reason string) string {
	switch reason {
	case ReasonClockBehind:
		return "before 2000-01-02: check the inverter's clock"
	case ReasonClockAhead:
		return "more than 24 h in the future: check the inverter's clock"
	case ReasonSoCOutOfRange:
		return "must be between 0 and 100"
	case ReasonSampleCountBelow:
		return "must be at least 1"
	}
	return reason
}

// Problem is one implausible field of a sample.
type Problem struct {
	Field  string // a sample field name, e.g. "ts"
	Reason string // one of the Reason codes
}

// Implausible returns what is implausible about a well-formed sample, nil when
// nothing is. A sample_count below 1 is expected as SampleCount 0 or less.
func Implausible(s Sample, now time.Time) []Problem {
	var p []Problem
	if s.TS.Before(MinTS) {
		p = append(p, Problem{"ts", ReasonClockBehind})
	} else if s.TS.After(now.Add(MaxFuture)) {
		p = append(p, Problem{"ts", ReasonClockAhead})
	}
	if s.BatterySoCPct < 0 || s.BatterySoCPct > 100 {
		p = append(p, Problem{"battery_soc_pct", ReasonSoCOutOfRange})
	}
	if s.SampleCount < 1 {
		p = append(p, Problem{"sample_count", ReasonSampleCountBelow})
	}
	return p
}

// SetAside is an implausible sample: not stored as a sample, but kept in the
// quarantine with what is wrong with it.
type SetAside struct {
	TS       time.Time
	Problems []Problem // at least one
	Sample   []byte    // the sample as received, a JSON object
}

// DefaultQuarantineMax is how many quarantine rows a device keeps unless told otherwise.
const DefaultQuarantineMax = 10000

// Option configures a Store.
type Option func(*Store)

// WithQuarantineMax bounds the quarantine rows of each device (QUARANTINE_MAX_PER_DEVICE):
// beyond it the oldest arrivals are dropped, so a runaway edge cannot fill the disk.
func WithQuarantineMax(n int) Option {
	return func(s *Store) { s.quarantineMax = int64(n) }
}

// beginner is a pool or connection that can start a transaction.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InsertSettingAside stores samples as Insert does and sets aside the implausible ones
// in the quarantine, in one transaction, returning how many samples were new. A
// re-sent (ts, field) of the device is skipped, keeping its first arrival; then the
// device's quarantine is trimmed to its bound, oldest arrivals first. Without anything
// to set aside it is Insert: one statement, no transaction.
func (s *Store) InsertSettingAside(ctx context.Context, deviceID string, samples []Sample,
	aside []SetAside, receivedAt time.Time) (int64, error) {
	if len(aside) == 0 {
		return s.Insert(ctx, deviceID, samples)
	}
	b, ok := s.conn.(beginner)
	if !ok {
		return 0, errors.New("set samples aside: the store's connection cannot begin a transaction")
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("set samples aside: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	q := s.q.WithTx(tx)
	var inserted int64
	if len(samples) > 0 {
		if inserted, err = s.insert(ctx, q, deviceID, samples); err != nil {
			return 0, err
		}
	}
	if err := q.LockQuarantine(ctx, deviceID); err != nil {
		return 0, fmt.Errorf("lock the quarantine of %q: %w", deviceID, err)
	}
	p := db.InsertQuarantineParams{DeviceID: deviceID, ReceivedAt: receivedAt}
	for _, a := range aside {
		for _, pr := range a.Problems {
			p.Ts = append(p.Ts, a.TS)
			p.Field = append(p.Field, pr.Field)
			p.Reason = append(p.Reason, pr.Reason)
			p.Sample = append(p.Sample, string(a.Sample))
		}
	}
	if _, err := q.InsertQuarantine(ctx, p); err != nil {
		return 0, fmt.Errorf("set aside %d samples: %w", len(aside), err)
	}
	if _, err := q.TrimQuarantine(ctx, db.TrimQuarantineParams{DeviceID: deviceID, Keep: s.quarantineMax}); err != nil {
		return 0, fmt.Errorf("trim the quarantine of %q: %w", deviceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("set samples aside: commit: %w", err)
	}
	return inserted, nil
}

// QuarantineEntry is one implausible field of a set-aside sample.
type QuarantineEntry struct {
	DeviceID   string          `json:"device_id"`
	TS         time.Time       `json:"ts"`
	Field      string          `json:"field"`
	Reason     string          `json:"reason"`
	Detail     string          `json:"detail"`
	ReceivedAt time.Time       `json:"received_at"`
	Sample     json.RawMessage `json:"sample"`
}

// QuarantineSummary says how many readings (distinct ts) of a device are set aside,
// for which reasons, and since when.
type QuarantineSummary struct {
	Readings int64            `json:"readings"`
	Since    *time.Time       `json:"since"` // the earliest arrival kept; nil: none
	Reasons  map[string]int64 `json:"reasons"`
}

// Quarantined returns the device's set-aside summary and its newest entries, at most
// limit, newest arrival first.
func (s *Store) Quarantined(ctx context.Context, deviceID string, limit int) (QuarantineSummary, []QuarantineEntry, error) {
	sum := QuarantineSummary{Reasons: map[string]int64{}}
	rows, err := s.q.QuarantineSummary(ctx, deviceID)
	if err != nil {
		return sum, nil, fmt.Errorf("summarize the quarantine of %q: %w", deviceID, err)
	}
	for _, r := range rows {
		if r.Reason == "" { // the total over all reasons
			sum.Readings, sum.Since = r.Readings, &r.Since
			continue
		}
		sum.Reasons[r.Reason] = r.Readings
	}
	entries, err := s.QuarantineList(ctx, deviceID, limit)
	return sum, entries, err
}

// QuarantineList returns the newest entries of a device ("": of every device), at
// most limit, newest arrival first.
func (s *Store) QuarantineList(ctx context.Context, deviceID string, limit int) ([]QuarantineEntry, error) {
	var rows []db.SungrowQuarantine
	var err error
	if deviceID == "" {
		rows, err = s.q.ListQuarantineAll(ctx, int64(limit))
	} else {
		rows, err = s.q.ListQuarantine(ctx, db.ListQuarantineParams{DeviceID: deviceID, MaxRows: int64(limit)})
	}
	if err != nil {
		return nil, fmt.Errorf("list the quarantine: %w", err)
	}
	entries := make([]QuarantineEntry, len(rows))
	for i, r := range rows {
		entries[i] = QuarantineEntry{DeviceID: r.DeviceID, TS: r.Ts, Field: r.Field, Reason: r.Reason,
			Detail: ReasonDetail(r.Reason), ReceivedAt: r.ReceivedAt, Sample: r.Sample}
	}
	return entries, nil
}

// PurgeQuarantine deletes the set-aside samples of a device ("": of every device) that
// arrived before a time (zero: whenever), returning how many rows went.
func (s *Store) PurgeQuarantine(ctx context.Context, deviceID string, before time.Time) (int64, error) {
	var p db.PurgeQuarantineParams
	if deviceID != "" {
		p.DeviceID = &deviceID
	}
	if !before.IsZero() {
		p.Before = &before
	}
	n, err := s.q.PurgeQuarantine(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("purge the quarantine: %w", err)
	}
	return n, nil
}
