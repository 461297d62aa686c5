package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// TestDaysInAwkwardZones checks the raw path's days where clocks skip midnight
// (America/Santiago, 2026-09-06 begins at 01:00) and where UTC hours do not nest in
// local days (Asia/Kolkata, +05:30): every day has its own hours and no other's.
func TestDaysInAwkwardZones(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	samples := samplesEvery(time.Date(2026, 9, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 9, 0, 0, 0, 0, time.UTC), 15*time.Minute)
	_, err := telemetry.NewStore(d.Pool).Insert(context.Background(), dev, samples)
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	tests := []struct {
		zone    string
		date    string
		buckets int
		first   time.Time // the day's first instant
	}{
		{"America/Santiago", "2026-09-05", 24, time.Date(2026, 9, 5, 4, 0, 0, 0, time.UTC)},
		{"America/Santiago", "2026-09-06", 23, time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC)}, // 01:00 -03
		{"America/Santiago", "2026-09-07", 24, time.Date(2026, 9, 7, 3, 0, 0, 0, time.UTC)},
		{"Asia/Kolkata", "2026-09-06", 24, time.Date(2026, 9, 5, 18, 30, 0, 0, time.UTC)},
	}
	anyNow := time.Date(2026, 9, 6, 12, 0, 0, 0, time.UTC) // the dates are explicit: now plays no part
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.date, func(t *testing.T) {
			is := is.New(t)
			loc := load(tt.zone)
			svc := series.NewRaw(d.Pool, loc)
			date, err := svc.ParseDate(tt.date, anyNow)
			is.NoErr(err)
			is.True(date.Equal(tt.first)) // the day begins where PostgreSQL begins it
			res, err := svc.Series(context.Background(), dev, "day", date)
			is.NoErr(err)
			buckets := res.Buckets
			is.Equal(len(buckets), tt.buckets)
			is.True(buckets[0].Bucket.Equal(tt.first)) // no bucket of the evening before
			civil, err := time.Parse(time.DateOnly, tt.date)
			is.NoErr(err)
			tomorrow, err := svc.ParseDate(civil.AddDate(0, 0, 1).Format(time.DateOnly), anyNow)
			is.NoErr(err)
			is.True(buckets[len(buckets)-1].Bucket.Add(time.Hour).Equal(tomorrow)) // and none of the next day
		})
	}
}
