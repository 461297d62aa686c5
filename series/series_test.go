package series

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestFrameSpans(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{loc: brussels}
	now := time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC) // a Sunday, the day clocks go forward
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, brussels) }
	for _, c := range []struct {
		frame, date string
		from, to    time.Time
	}{
		{"day", "", day(2026, 3, 29), day(2026, 3, 30)},
		{"week", "", day(2026, 3, 23), day(2026, 3, 30)},
		{"week", "2026-03-30", day(2026, 3, 30), day(2026, 4, 6)},
		{"week", "2026-01-01", day(2025, 12, 29), day(2026, 1, 5)}, // across the year
		{"month", "2026-02-28", day(2026, 2, 1), day(2026, 3, 1)},
		{"year", "2024-02-29", day(2024, 1, 1), day(2025, 1, 1)},
	} {
		is := is.New(t)
		d, err := s.ParseDate(c.date, now)
		is.NoErr(err)
		from, to := frames[c.frame].span(d)
		is.True(from.Equal(c.from)) // frame start
		is.True(to.Equal(c.to))     // frame end
	}
	for _, bad := range []string{"2026-02-29", "26-03-01", "2026-03-01T00:00:00Z", "1969-12-31"} {
		_, err := s.ParseDate(bad, now)
		is.New(t).Equal(err, ErrBadDate)
	}
	is.New(t).Equal(CheckFrame("hour"), ErrUnknownFrame)
}

func TestWindowEndsAtWholeBucketsBeforeNow(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 3, 15, 10, 30, 0, 0, time.UTC)
	from, to := Window(Hourly, time.Time{}, time.Time{}, now, time.UTC)
	is.True(from.Equal(allFrom))
	is.True(to.Equal(time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC))) // the current hour stays open
	from, to = Window(Daily, time.Date(2026, 3, 2, 5, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), now, time.UTC)
	is.True(from.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)))
	is.True(to.Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))) // never part of a day
	_, to = Window(Monthly, time.Time{}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), now, time.UTC)
	is.True(to.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))) // capped at the current month
}
