package series_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

// TestMoneyKeeperRounds runs the keeper's rounds by hand on the TimescaleDB
// aggregates (the only path that keeps money): the first keeps every device's past
// days; then only a device stored since is looked at, and only its stale days priced;
// a price change makes every device's days priced again.
func TestMoneyKeeperRounds(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Brussels")
	is.NoErr(err)
	d := testenv.NewEmpty(t, testenv.TimescaleDB)
	is.NoErr(db.New(d.Pool).SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: loc.String()}))
	testenv.Migrate(t, d.Pool)
	var samples []telemetry.Sample
	for _, s := range costFixture() {
		if s.TS.Before(time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC)) {
			samples = append(samples, s)
		}
	}
	store := telemetry.NewStore(d.Pool)
	_, err = store.Insert(ctx, costDevice, samples)
	is.NoErr(err)
	prices := tariff.NewStore(d.Pool)
	setPrices(t, prices, loc)
	refresh := func() {
		for _, agg := range series.Aggregates {
			is.NoErr(series.Refresh(ctx, d.Pool, agg, time.Time{}, time.Date(2026, 2, 1, 0, 0, 0, 0, loc)))
		}
	}
	refresh()
	svc, _, err := series.Open(ctx, d.Pool, loc)
	is.NoErr(err)
	svc = svc.WithClock(func() time.Time { return time.Date(2026, 1, 25, 12, 0, 0, 0, time.UTC) })
	k := series.NewMoneyKeeper(svc, time.Minute, slog.New(slog.DiscardHandler))
	keptRows := func() (n int) {
		is.NoErr(d.Pool.QueryRow(ctx, "SELECT count(*) FROM sungrow_money_daily").Scan(&n))
		return n
	}

	kept, err := k.Keep(ctx) // the first round: every device
	is.NoErr(err)
	is.Equal(kept, 22) // local days 2025-12-30 … 2026-01-20 (the last sample is at 00:40 on the 20th)
	is.Equal(keptRows(), 22)
	kept, err = k.Keep(ctx) // nothing stored, prices as they were: nothing to do
	is.NoErr(err)
	is.Equal(kept, 0)

	// A late sample on 2026-01-10, stored: that day only is priced again.
	late := telemetry.Sample{DeviceID: costDevice, TS: time.Date(2026, 1, 10, 12, 5, 0, 0, time.UTC),
		PVPowerW: 100, LoadPowerW: 4000, ExportPowerW: -3000.5, SampleCount: 3}
	_, err = store.Insert(ctx, costDevice, []telemetry.Sample{late})
	is.NoErr(err)
	refresh()
	k.Stored(costDevice, late.TS)
	kept, err = k.Keep(ctx)
	is.NoErr(err)
	is.Equal(kept, 1)

	// A price change: every day of every device again, under the new version.
	_, _, err = prices.Set(ctx, tariff.Tariff{DeviceID: tariff.AllDevices, Kind: tariff.Fixed, Currency: "EUR",
		ValidFrom: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), Import: "0.40", Export: "0.10"})
	is.NoErr(err)
	kept, err = k.Keep(ctx)
	is.NoErr(err)
	is.Equal(kept, 22)
	is.Equal(keptRows(), 22) // replaced, not added
}
