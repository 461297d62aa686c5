// Package telemetry is sungrow's domain core: the inverter sample every part of the
// program speaks, and the store that writes and reads samples through the sqlc
// queries in db/.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/db"
)

// Sample is one reading of a hybrid inverter, exactly as the API contract shapes it.
type Sample struct {
	DeviceID      string    `json:"device_id"`
	TS            time.Time `json:"ts"`
	PVPowerW      float64   `json:"pv_power_w"`
	PVDailyKWh    *float64  `json:"pv_daily_kwh"`
	BatteryPowerW float64   `json:"battery_power_w"` // positive: charging
	BatterySoCPct float64   `json:"battery_soc_pct"`
	BatteryTempC  *float64  `json:"battery_temp_c"`
	LoadPowerW    float64   `json:"load_power_w"`
	ExportPowerW  float64   `json:"export_power_w"` // positive: export, negative: import
	SampleCount   int32     `json:"sample_count"`
}

// ErrNotFound is returned when a device has no samples.
var ErrNotFound = errors.New("no samples for this device")

// Store reads and writes samples.
type Store struct {
	q             *db.Queries
	conn          db.DBTX
	quarantineMax int64
	// rollup caches whether plain PostgreSQL's sungrow_rollup exists (0: not asked
	// yet, rollupAbsent, rollupPresent): where it does, every insert adds to it.
	rollup atomic.Int32
}

const (
	rollupAbsent int32 = iota + 1
	rollupPresent
)

// NewStore returns a Store over a pool, connection or transaction.
func NewStore(conn db.DBTX, opts ...Option) *Store {
	s := &Store{q: db.New(conn), conn: conn, quarantineMax: DefaultQuarantineMax}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Insert stores the samples of one device in one statement and returns how many were
// new; samples whose (device_id, ts) is already stored are skipped. The caller has
// checked that every sample belongs to deviceID and is valid.
func (s *Store) Insert(ctx context.Context, deviceID string, samples []Sample) (int64, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	return s.insert(ctx, s.q, deviceID, samples)
}

// insert stores samples through q: on plain PostgreSQL with the rollup into it in the
// same statement, on TimescaleDB (whose aggregates follow by themselves) alone.
func (s *Store) insert(ctx context.Context, q *db.Queries, deviceID string, samples []Sample) (int64, error) {
	state := s.rollup.Load()
	if state == 0 {
		present, err := q.RollupPresent(ctx)
		if err != nil {
			return 0, fmt.Errorf("insert %d samples: look for the rollup: %w", len(samples), err)
		}
		state = rollupAbsent
		if present {
			state = rollupPresent
		}
		s.rollup.Store(state)
	}
	var n int64
	var err error
	if state == rollupPresent {
		n, err = q.InsertSamplesRollup(ctx, db.InsertSamplesRollupParams(insertParams(deviceID, samples)))
	} else {
		n, err = q.InsertSamples(ctx, insertParams(deviceID, samples))
	}
	if err != nil {
		return 0, fmt.Errorf("insert %d samples: %w", len(samples), err)
	}
	return n, nil
}

func insertParams(deviceID string, samples []Sample) db.InsertSamplesParams {
	n := len(samples)
	p := db.InsertSamplesParams{
		DeviceID:      deviceID,
		Ts:            make([]time.Time, n),
		PvPowerW:      make([]float64, n),
		PvDailyKwh:    make([]float64, n),
		BatteryPowerW: make([]float64, n),
		BatterySocPct: make([]float64, n),
		BatteryTempC:  make([]float64, n),
		LoadPowerW:    make([]float64, n),
		ExportPowerW:  make([]float64, n),
		SampleCount:   make([]int32, n),
	}
	for i, s := range samples {
		p.Ts[i] = s.TS
		p.PvPowerW[i] = s.PVPowerW
		p.PvDailyKwh[i] = nullAsNaN(s.PVDailyKWh)
		p.BatteryPowerW[i] = s.BatteryPowerW
		p.BatterySocPct[i] = s.BatterySoCPct
		p.BatteryTempC[i] = nullAsNaN(s.BatteryTempC)
		p.LoadPowerW[i] = s.LoadPowerW
		p.ExportPowerW[i] = s.ExportPowerW
		p.SampleCount[i] = s.SampleCount
	}
	return p
}

// nullAsNaN encodes an absent measure for the insert query, which turns NaN back into
// NULL. Validation rejects non-finite values, so NaN never stands for a real reading.
func nullAsNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// Latest returns the newest sample of a device, or ErrNotFound.
func (s *Store) Latest(ctx context.Context, deviceID string) (Sample, error) {
	row, err := s.q.LatestSample(ctx, deviceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Sample{}, ErrNotFound
	}
	if err != nil {
		return Sample{}, fmt.Errorf("latest sample of %q: %w", deviceID, err)
	}
	return sampleOf(row), nil
}

// LatestOf returns the newest sample of each of the devices that has one, in one
// round trip (the live stream reads many devices at once).
func (s *Store) LatestOf(ctx context.Context, deviceIDs []string) ([]Sample, error) {
	rows, err := s.q.LatestSamples(ctx, deviceIDs)
	if err != nil {
		return nil, fmt.Errorf("latest samples of %d devices: %w", len(deviceIDs), err)
	}
	samples := make([]Sample, len(rows))
	for i, row := range rows {
		samples[i] = sampleOf(row)
	}
	return samples, nil
}

func sampleOf(row db.SungrowSample) Sample {
	return Sample{
		DeviceID:      row.DeviceID,
		TS:            row.Ts,
		PVPowerW:      row.PvPowerW,
		PVDailyKWh:    row.PvDailyKwh,
		BatteryPowerW: row.BatteryPowerW,
		BatterySoCPct: row.BatterySocPct,
		BatteryTempC:  row.BatteryTempC,
		LoadPowerW:    row.LoadPowerW,
		ExportPowerW:  row.ExportPowerW,
		SampleCount:   row.SampleCount,
	}
}

// TimescaleInstalled reports whether the database has the timescaledb extension.
func (s *Store) TimescaleInstalled(ctx context.Context) (bool, error) {
	ok, err := s.q.TimescaleInstalled(ctx)
	if err != nil {
		return false, fmt.Errorf("check for timescaledb: %w", err)
	}
	return ok, nil
}

// Devices lists every device with at least one sample, in id order.
func (s *Store) Devices(ctx context.Context) ([]string, error) {
	ids, err := s.q.DeviceIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list devices with samples: %w", err)
	}
	return ids, nil
}
