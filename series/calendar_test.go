package series

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

// TestFrameSpansAtPinnedInstants: at every instant of testenv.Instants, "today" is the
// instant's local date, and each frame's span is the day, the Monday-to-Monday week,
// the month or the year that holds it, worked out here with time.Date; so is the span
// of the day before, which is in another week, month or year at the edge instants.
func TestFrameSpansAtPinnedInstants(t *testing.T) {
	for _, inst := range testenv.Instants(t) {
		t.Run(inst.Name, func(t *testing.T) {
			is := is.New(t)
			s := &Service{loc: inst.Loc}
			midnight := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, inst.Loc) }
			yesterday := inst.Now.AddDate(0, 0, -1)
			for date, day := range map[string]time.Time{"": inst.Now, yesterday.Format(time.DateOnly): yesterday} {
				d, err := s.ParseDate(date, inst.Now)
				is.NoErr(err)
				y, m, dd := day.Date()
				is.True(d.Equal(midnight(y, m, dd))) // the local date's midnight
				monday := dd - (int(day.Weekday())+6)%7
				for name, want := range map[string][2]time.Time{
					"day":   {midnight(y, m, dd), midnight(y, m, dd+1)},
					"week":  {midnight(y, m, monday), midnight(y, m, monday+7)},
					"month": {midnight(y, m, 1), midnight(y, m+1, 1)},
					"year":  {midnight(y, 1, 1), midnight(y+1, 1, 1)},
				} {
					from, to := frames[name].span(d)
					if !from.Equal(want[0]) || !to.Equal(want[1]) {
						t.Errorf("%s %q: span %s to %s, want %s to %s", name, date, from, to, want[0], want[1])
					}
				}
				from, _ := frames["week"].span(d)
				is.Equal(from.Weekday(), time.Monday)
			}
		})
	}
}

// currentBucket is the start of agg's bucket that holds now, worked out with
// time.Date: UTC hours, local midnights, local firsts of the month.
func currentBucket(agg Aggregate, now time.Time, loc *time.Location) time.Time {
	u, l := now.UTC(), now.In(loc)
	switch agg {
	case Hourly:
		return time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), 0, 0, 0, time.UTC)
	case Daily:
		return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	}
	return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
}

// TestWindowAtPinnedInstants: at every instant, a refresh window ends where the
// bucket holding now begins, whatever the window asked for, and begins at the bucket
// holding its from.
func TestWindowAtPinnedInstants(t *testing.T) {
	for _, inst := range testenv.Instants(t) {
		t.Run(inst.Name, func(t *testing.T) {
			for _, agg := range Aggregates {
				current := currentBucket(agg, inst.Now, inst.Loc)
				if inst.Now.Before(current) || !inst.Now.Before(agg.Next(current, inst.Loc)) {
					t.Fatalf("%s: the bucket from %s does not hold %s", agg, current, inst.Now)
				}
				askedFrom := inst.Now.Add(-36 * time.Hour)
				for _, to := range []time.Time{{}, inst.Now, inst.Now.Add(48 * time.Hour)} {
					from, end := Window(agg, askedFrom, to, inst.Now, inst.Loc)
					if !end.Equal(current) {
						t.Errorf("%s to %s: window ends %s, want %s (the current bucket stays open)", agg, to, end, current)
					}
					if want := currentBucket(agg, askedFrom, inst.Loc); !from.Equal(want) {
						t.Errorf("%s: window begins %s, want %s", agg, from, want)
					}
				}
			}
		})
	}
}

// TestRefresherWindowsAtPinnedInstants: at every instant, in its zone, a late-data
// refresh of the last 40 hours materializes every sample of each aggregate's complete
// buckets and none of the bucket holding now (it would stop taking in new samples).
func TestRefresherWindowsAtPinnedInstants(t *testing.T) {
	instants := testenv.Instants(t)
	for _, zone := range testenv.CalendarZones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := testenv.NewInZone(t, testenv.TimescaleDB, zone)
			store := telemetry.NewStore(d.Pool)
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			for i, inst := range instants {
				if inst.Loc.String() != zone {
					continue
				}
				t.Run(inst.Name, func(t *testing.T) {
					is := is.New(t)
					device := fmt.Sprintf("inverter-%02d", i) // its own: other instants' refreshes leave it alone
					var samples []telemetry.Sample
					for ts := inst.Now.UTC().Add(-40 * time.Hour); ts.Before(inst.Now); ts = ts.Add(10 * time.Minute) {
						samples = append(samples, telemetry.Sample{DeviceID: device, TS: ts, PVPowerW: 1, SampleCount: 1})
					}
					_, err := store.Insert(ctx, device, samples)
					is.NoErr(err)
					r := NewRefresher(d.Pool, inst.Loc, 0, logger, inst.Clock())
					is.NoErr(r.refresh(ctx, samples[0].TS, samples[len(samples)-1].TS))
					for _, agg := range Aggregates {
						current := currentBucket(agg, inst.Now, inst.Loc)
						complete := slices.IndexFunc(samples, func(s telemetry.Sample) bool { return !s.TS.Before(current) })
						if complete < 0 {
							complete = len(samples)
						}
						got := testenv.MaterializedSamples(t, d.Pool, string(agg), device, allFrom, current)
						if got != int64(complete) {
							t.Errorf("%s: %d samples materialized before %s, want %d", agg, got, current, complete)
						}
						if n := testenv.MaterializedSamples(t, d.Pool, string(agg), device, current, allTo); n != 0 {
							t.Errorf("%s: %d samples of the open bucket from %s materialized", agg, n, current)
						}
					}
				})
			}
		})
	}
}
