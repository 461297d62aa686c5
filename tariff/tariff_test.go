package tariff

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestParseWindow(t *testing.T) {
	for _, c := range []struct {
		in         string
		start, end int
		err        string
	}{
		{in: "22:00-06:00", start: 22, end: 6},
		{in: "17:00-20:00", start: 17, end: 20},
		{in: "00:00-24:00", start: 0, end: 24},
		{in: "18:00-00:00", start: 18, end: 24},
		{in: "7:00-9:00", start: 7, end: 9},
		{in: "06:00-06:00", err: "lasts no time"},
		{in: "00:00-00:00", err: "lasts no time"},
		{in: "22:30-06:00", err: "whole hours"},
		{in: "24:00-06:00", err: "not a time of day"},
		{in: "25:00-06:00", err: "not a time of day"},
		{in: "-1:00-06:00", err: "not a time of day"},
		{in: "22:00", err: "HH:MM-HH:MM"},
	} {
		start, end, err := ParseWindow(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseWindow(%q) = %v, want an error saying %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || start != c.start || end != c.end {
			t.Errorf("ParseWindow(%q) = %d, %d, %v; want %d, %d", c.in, start, end, err, c.start, c.end)
		}
	}
}

func TestParseDays(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		"mon-sun": "mon-sun", "mon-fri": "mon-fri", "sat,sun": "sat,sun", "Mon,wed-fri": "mon,wed-fri",
		"fri-mon": "mon,fri-sun", "sun": "sun",
	} {
		d, err := ParseDays(in)
		is.NoErr(err)
		is.Equal(d.String(), want)
	}
	_, err := ParseDays("mon-funday")
	is.True(err != nil)
	d, _ := ParseDays("mon-fri")
	is.True(d.Has(time.Monday) && d.Has(time.Friday) && !d.Has(time.Saturday) && !d.Has(time.Sunday))
}

// TestWindowCovers: a window past midnight belongs to the day it begins on.
func TestWindowCovers(t *testing.T) {
	is := is.New(t)
	sat, _ := ParseDays("sat")
	w := TimeWindow{Start: 22, End: 6, Days: sat}
	is.True(w.Covers(time.Saturday, 22))
	is.True(w.Covers(time.Saturday, 23))
	is.True(w.Covers(time.Sunday, 0))
	is.True(w.Covers(time.Sunday, 5))
	is.True(!w.Covers(time.Sunday, 6))
	is.True(!w.Covers(time.Sunday, 22))  // Sunday's evening is not in a Saturday window
	is.True(!w.Covers(time.Saturday, 3)) // nor is Saturday's small hours (Friday's night)
	is.Equal(uncovered([]TimeWindow{w}), 7*24-8)
	all := TimeWindow{Start: 0, End: 24, Days: EveryDay}
	is.Equal(uncovered([]TimeWindow{all}), 0)
	_, _, overlaps := overlap(w, TimeWindow{Start: 0, End: 24, Days: 1 << 6}) // Sunday
	is.True(overlaps)
	_, _, overlaps = overlap(w, TimeWindow{Start: 6, End: 22, Days: EveryDay})
	is.True(!overlaps)
}

func TestParsePriceAndCurrency(t *testing.T) {
	is := is.New(t)
	for _, ok := range []string{"0.31", "-0.05", "+1", "12", ".5", " 0.2871 "} {
		_, err := ParsePrice(ok)
		is.NoErr(err)
	}
	for _, bad := range []string{"", "abc", "1e3", "NaN", "Inf", "0,31", "1000000", "0.3 EUR"} {
		_, err := ParsePrice(bad)
		is.True(err != nil)
	}
	c, err := ParseCurrency("eur")
	is.NoErr(err)
	is.Equal(c, "EUR")
	for _, bad := range []string{"EU", "EURO", "XXX", "XAU", "ABC", ""} {
		_, err := ParseCurrency(bad)
		is.True(err != nil)
	}
}

func TestParseCSV(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		is := is.New(t)
		prices, err := ParseCSV(strings.NewReader("start,import_price,export_price\n"+
			"2026-03-29T01:00:00+01:00,0.21,0.05\n"+
			"# a comment\n\n"+
			"2026-03-29T03:00:00+02:00,-0.02\n"+ // an hour after the one before: 02:00 does not exist
			"2026-03-29T02:00:00Z, 0.3 ,\n"), "p.csv", brussels)
		is.NoErr(err)
		is.Equal(len(prices), 3)
		is.True(prices[1].Start.Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)))
		is.Equal(prices[1].Import, "-0.02")
		is.Equal(prices[1].Export, "") // falls back to the fixed or time-of-use export price
		is.Equal(prices[2].Import, "0.3")
		// In a half-hour zone hours begin at :30 UTC.
		_, err = ParseCSV(strings.NewReader("2026-03-29T01:30:00Z,0.2\n"), "p.csv", kolkata)
		is.NoErr(err)
	})
	for _, c := range []struct{ name, in, want string }{
		{"bad start", "2026-03-29T01:00:00+01:00,0.2\nyesterday,0.3\n", "p.csv line 2, field start"},
		{"not an hour", "2026-03-29T01:15:00+01:00,0.2\n", "p.csv line 1, field start: 2026-03-29T01:15:00+01:00 does not begin an hour"},
		{"bad import", "2026-03-29T01:00:00+01:00,0.2\n2026-03-29T02:00:00+01:00,cheap\n", "p.csv line 2, field import_price"},
		{"bad export", "start,import_price,export_price\n2026-03-29T01:00:00+01:00,0.2,1e-3\n", "p.csv line 2, field export_price"},
		{"repeated hour", "2026-03-29T01:00:00+01:00,0.2\n2026-03-29T00:00:00Z,0.3\n", "p.csv line 2, field start: 2026-03-29T00:00:00Z is priced on line 1 already"},
		{"too many fields", "2026-03-29T01:00:00+01:00,0.2,0.1,0.1\n", "p.csv line 1: 4 fields"},
		{"one field", "2026-03-29T01:00:00+01:00\n", "p.csv line 1: 1 fields"},
		{"bad quote", "2026-03-29T01:00:00+01:00,\"0.2\n", "p.csv line 1"},
		{"empty", "start,import_price\n", "no prices"},
	} {
		t.Run(c.name, func(t *testing.T) {
			prices, err := ParseCSV(strings.NewReader(c.in), "p.csv", brussels)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			is.New(t).Equal(len(prices), 0) // nothing to write
		})
	}
}
