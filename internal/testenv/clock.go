package testenv

import (
	"testing"
	"time"
)

// CalendarZones are the SUNGROW_TZ values the calendar tests run in: one without
// daylight saving and one with it.
var CalendarZones = []string{"UTC", "Europe/Brussels"}

// calendarWallTimes are the local wall times a calendar test pins "now" to in each of
// CalendarZones: where a day, month or year has only just begun or is about to end,
// a leap day, and both 2026 daylight-saving change days in Europe/Brussels before and
// after the change (02:00–03:00 is skipped in March and repeated in October).
var calendarWallTimes = []struct {
	name string
	t    [5]int // year, month, day, hour, minute
}{
	{"first-of-month-00:30", [5]int{2026, 12, 1, 0, 30}},
	{"last-of-month-23:30", [5]int{2026, 11, 30, 23, 30}},
	{"new-year-00:10", [5]int{2027, 1, 1, 0, 10}},
	{"leap-day-noon", [5]int{2028, 2, 29, 12, 0}},
	{"spring-forward-01:30", [5]int{2026, 3, 29, 1, 30}},
	{"spring-forward-03:30", [5]int{2026, 3, 29, 3, 30}},
	{"fall-back-01:30", [5]int{2026, 10, 25, 1, 30}},
	{"fall-back-03:30", [5]int{2026, 10, 25, 3, 30}},
	{"mid-june-noon", [5]int{2026, 6, 15, 12, 0}},
}

// Instant is one pinned "now" of a calendar test: a wall time in a zone.
type Instant struct {
	Name string         // zone and wall time, for subtest names
	Loc  *time.Location // SUNGROW_TZ of the run
	Now  time.Time      // in Loc
}

// Clock returns a clock that stays at the instant.
func (i Instant) Clock() func() time.Time { return func() time.Time { return i.Now } }

// Instants returns every pinned instant in every zone of CalendarZones. Tests whose
// expectations depend on the date or the time of day run at each of them, so they hold
// at any hour of any day, not only at the hour CI happens to run.
func Instants(t testing.TB) []Instant {
	t.Helper()
	var out []Instant
	for _, zone := range CalendarZones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatalf("load zone %s: %v", zone, err)
		}
		for _, w := range calendarWallTimes {
			now := time.Date(w.t[0], time.Month(w.t[1]), w.t[2], w.t[3], w.t[4], 0, 0, loc)
			if now.Hour() != w.t[3] || now.Minute() != w.t[4] {
				t.Fatalf("%s does not exist in %s", w.name, zone) // a skipped wall time
			}
			out = append(out, Instant{Name: zone + "/" + w.name, Loc: loc, Now: now})
		}
	}
	return out
}
