// Package tariff keeps the prices behind the money fields of GET /v1/series: fixed,
// time-of-use and hourly prices, per device or for all devices, each checked before
// anything is written (`sungrow tariff set|import|list|remove`). The arithmetic that
// applies them to energy lives beside the series it enriches, in package series.
package tariff

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// AllDevices is the device_id of prices that apply to every device without its own.
const AllDevices = ""

// Kind is the shape of one stored price.
type Kind string

const (
	Fixed  Kind = "fixed"  // one import and one export price
	Window Kind = "window" // a time-of-use price for some local hours of some weekdays
	Hourly Kind = "hourly" // an import of one price per hour
)

// Days is a set of weekdays: bit 0 Monday … bit 6 Sunday (ISO order).
type Days uint8

// EveryDay is Monday to Sunday.
const EveryDay Days = 1<<7 - 1

var dayNames = [7]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// bit is the Days bit of a time.Weekday.
func bit(d time.Weekday) Days { return 1 << ((int(d) + 6) % 7) }

// Has reports whether d is in the set.
func (s Days) Has(d time.Weekday) bool { return s&bit(d) != 0 }

// ParseDays reads a weekday set such as "mon-sun", "mon-fri", "sat,sun" or
// "mon,wed-fri"; a range may wrap ("fri-mon").
func ParseDays(v string) (Days, error) {
	index := func(name string) (int, error) {
		for i, n := range dayNames {
			if strings.EqualFold(strings.TrimSpace(name), n) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("%q is not a weekday: want mon, tue, wed, thu, fri, sat or sun", strings.TrimSpace(name))
	}
	var set Days
	for _, part := range strings.Split(v, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := index(a)
		if err != nil {
			return 0, err
		}
		to := from
		if isRange {
			if to, err = index(b); err != nil {
				return 0, err
			}
		}
		for i := from; ; i = (i + 1) % 7 {
			set |= 1 << i
			if i == to {
				break
			}
		}
	}
	return set, nil
}

// String writes the set as ParseDays reads it, with ranges where it can.
func (s Days) String() string {
	if s == EveryDay {
		return "mon-sun"
	}
	var parts []string
	for i := 0; i < 7; i++ {
		if s&(1<<i) == 0 {
			continue
		}
		j := i
		for j+1 < 7 && s&(1<<(j+1)) != 0 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, dayNames[i])
		case j == i+1:
			parts = append(parts, dayNames[i], dayNames[j])
		default:
			parts = append(parts, dayNames[i]+"-"+dayNames[j])
		}
		i = j
	}
	return strings.Join(parts, ",")
}

// TimeWindow is a time-of-use window: local hours [Start, End) of the days in Days
// (Start 0–23, End 1–24); End <= Start runs past midnight, and the hours after midnight still belong to the
// day the window began on ("sat-sun 22:00-06:00" includes Monday 03:00).
type TimeWindow struct {
	Start, End int
	Days       Days
}

// ParseWindow reads "HH:MM-HH:MM" on whole hours ("22:00-06:00", "00:00-24:00").
func ParseWindow(v string) (start, end int, err error) {
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want HH:MM-HH:MM, e.g. 22:00-06:00", v)
	}
	if start, err = parseHour(a, false); err != nil {
		return 0, 0, err
	}
	if end, err = parseHour(b, true); err != nil {
		return 0, 0, err
	}
	if start == end%24 && end != 24 {
		return 0, 0, fmt.Errorf("%q lasts no time: a window lasts 1 to 24 hours (a whole day is 00:00-24:00)", v)
	}
	if end == 0 {
		end = 24 // "22:00-00:00" ends at midnight
	}
	return start, end, nil
}

var clock = regexp.MustCompile(`^(\d{1,2}):(\d{2})$`)

func parseHour(v string, end bool) (int, error) {
	v = strings.TrimSpace(v)
	m := clock.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("%q is not a time of day: want HH:MM", v)
	}
	h, _ := strconv.Atoi(m[1])
	if mm, _ := strconv.Atoi(m[2]); mm != 0 {
		if mm < 60 && h < 24 {
			return 0, fmt.Errorf("%q: windows start and end on whole hours, because energy is known per hour (a price for part of an hour could not be applied exactly)", v)
		}
		return 0, fmt.Errorf("%q is not a time of day", v)
	}
	if h > 24 || h == 24 && !end {
		return 0, fmt.Errorf("%q is not a time of day", v)
	}
	return h, nil
}

// String writes the window as ParseWindow reads it.
func (w TimeWindow) String() string {
	return fmt.Sprintf("%02d:00-%02d:00", w.Start, w.End)
}

// Covers reports whether the local hour beginning at hour (0–23) of a day that is a
// weekday falls in the window.
func (w TimeWindow) Covers(weekday time.Weekday, hour int) bool {
	if w.Start < w.End {
		return w.Days.Has(weekday) && hour >= w.Start && hour < w.End
	}
	yesterday := (weekday + 6) % 7
	return w.Days.Has(weekday) && hour >= w.Start || w.Days.Has(yesterday) && hour < w.End
}

// overlap returns a weekday and hour both windows cover, if any.
func overlap(a, b TimeWindow) (time.Weekday, int, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		for h := 0; h < 24; h++ {
			if a.Covers(d, h) && b.Covers(d, h) {
				return d, h, true
			}
		}
	}
	return 0, 0, false
}

var decimal = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)

// ErrPrice says what a price looks like.
var ErrPrice = errors.New("want a price per kWh as a decimal number such as 0.31 (negative allowed)")

// ParsePrice checks a price per kWh written as a plain decimal and returns it as
// written, for the database to store exactly.
func ParsePrice(v string) (string, error) {
	v = strings.TrimSpace(v)
	f, err := strconv.ParseFloat(v, 64)
	if !decimal.MatchString(v) || err != nil || math.Abs(f) >= 1e6 {
		return "", fmt.Errorf("%q: %w", v, ErrPrice)
	}
	return v, nil
}

// ParseDate reads the YYYY-MM-DD from which a price applies (from local midnight).
func ParseDate(v string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(v))
	if err != nil || d.Year() < 1970 || d.Year() >= 2200 {
		return time.Time{}, fmt.Errorf("%q: want a date as YYYY-MM-DD, e.g. 2026-01-01", v)
	}
	return d, nil
}

// ParseCurrency checks an ISO 4217 code ("eur" is read as EUR).
func ParseCurrency(v string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(v))
	if !currencies[c] {
		return "", fmt.Errorf("%q is not an ISO 4217 currency code such as EUR, CHF, GBP or USD", v)
	}
	return c, nil
}
