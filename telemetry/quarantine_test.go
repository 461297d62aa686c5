package telemetry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

// TestQuarantineBoundHoldsUnderConcurrentBatches: batches of one device set aside at
// once never leave more than the bound, which a trim from a snapshot without the other
// batch's rows would.
func TestQuarantineBoundHoldsUnderConcurrentBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool, telemetry.WithQuarantineMax(5))
	now := time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)
	for round := range 10 { // each round: four batches released at once, then a look
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				var aside []telemetry.SetAside
				for i := range 3 {
					ts := time.Unix(int64(round*100+g*10+i), 0)
					s := telemetry.Sample{TS: ts, BatterySoCPct: 50, SampleCount: 1}
					aside = append(aside, telemetry.SetAside{TS: ts, Problems: telemetry.Implausible(s, now), Sample: []byte(`{}`)})
				}
				<-start
				if _, err := store.InsertSettingAside(ctx, "inverter-01", nil, aside, now); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		var n int
		is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_quarantine").Scan(&n))
		is.Equal(n, 5) // after round
	}
}

// TestInsertSettingAsideIsAtomic: when setting aside fails, the good samples of the
// batch are not stored either.
func TestInsertSettingAsideIsAtomic(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	now := time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)
	good := []telemetry.Sample{{DeviceID: "inverter-01", TS: now, BatterySoCPct: 50, SampleCount: 1}}
	bad := []telemetry.SetAside{{TS: time.Unix(10, 0), Problems: []telemetry.Problem{{Field: "ts", Reason: telemetry.ReasonClockBehind}},
		Sample: []byte(`not json`)}}
	_, err := store.InsertSettingAside(ctx, "inverter-01", good, bad, now)
	is.True(err != nil)
	var n int
	is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_samples").Scan(&n))
	is.Equal(n, 0) // rolled back with the quarantine insert
}
