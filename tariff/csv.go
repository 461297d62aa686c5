package tariff

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// HourPrice is the price of the hour beginning at Start; Export is "" where the file
// gives none (the fixed or time-of-use export price in force applies).
type HourPrice struct {
	Start          time.Time
	Import, Export string
}

// ParseCSV reads hourly prices as day-ahead exports and Tibber give them: lines of
// start,import_price[,export_price] with RFC 3339 starts, an optional header line
// naming the columns, blank lines and # comments ignored. Each start must begin a whole
// hour in loc (energy is known per hour) and appear once. The first problem is
// returned naming the file, line and field; on error nothing is returned.
func ParseCSV(r io.Reader, name string, loc *time.Location) ([]HourPrice, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out []HourPrice
	seen := map[int64]int{} // by Unix time: the same instant in two offsets is one hour
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s line %d: %w", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		at := func(field string) string { return fmt.Sprintf("%s line %d, field %s", name, line, field) }
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "start") {
			continue // the header
		}
		if len(rec) < 2 || len(rec) > 3 {
			return nil, fmt.Errorf("%s line %d: %d fields, want start,import_price[,export_price]", name, line, len(rec))
		}
		start, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2026-03-01T00:00:00+01:00", at("start"), rec[0])
		}
		if local := start.In(loc); local.Minute() != 0 || local.Second() != 0 || local.Nanosecond() != 0 {
			return nil, fmt.Errorf("%s: %s does not begin an hour in %s: prices are per hour, because energy is known per hour", at("start"), rec[0], loc)
		}
		if start.Year() < 1970 || start.Year() >= 2200 {
			return nil, fmt.Errorf("%s: %s is out of range", at("start"), rec[0])
		}
		if prev, dup := seen[start.Unix()]; dup {
			return nil, fmt.Errorf("%s: %s is priced on line %d already", at("start"), rec[0], prev)
		}
		seen[start.Unix()] = line
		p := HourPrice{Start: start}
		if p.Import, err = ParsePrice(rec[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", at("import_price"), err)
		}
		if len(rec) == 3 && strings.TrimSpace(rec[2]) != "" {
			if p.Export, err = ParsePrice(rec[2]); err != nil {
				return nil, fmt.Errorf("%s: %w", at("export_price"), err)
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prices (want lines of start,import_price[,export_price])", name)
	}
	return out, nil
}
