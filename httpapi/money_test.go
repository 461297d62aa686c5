package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/tariff"
)

// TestSeriesMoneyInJSONAndCSV checks the handler's side of the money: null with a null
// currency before any price, then every bucket's and the totals' money fields, the
// currency and the hour counts in JSON, and the same numbers in the CSV. (The money
// itself is tested against the fixture in package series, on both backends.)
func TestSeriesMoneyInJSONAndCSV(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	insertSamples(t, d.Pool, seriesFixture())
	srv := newSeriesServer(t, d.Pool, series.NewRaw(d.Pool, time.UTC), nil)
	// body is an answer's pricing, and its buckets' and totals' numbers by field.
	type body struct {
		Currency                     *string
		FallbackHours, UnpricedHours int64
		Buckets                      []map[string]*float64
		Total                        map[string]*float64
	}
	numbers := func(m map[string]any) map[string]*float64 {
		out := map[string]*float64{}
		for k, v := range m {
			if f, ok := v.(float64); ok {
				out[k] = &f
			} else if v == nil {
				out[k] = nil
			}
		}
		return out
	}
	read := func(query string) body {
		t.Helper()
		status, raw := getSeries(t, srv.URL, query)
		is.Equal(status, 200)
		var answer struct {
			Currency      *string          `json:"currency"`
			FallbackHours int64            `json:"price_fallback_hours"`
			UnpricedHours int64            `json:"unpriced_hours"`
			Series        []map[string]any `json:"series"`
			Totals        map[string]any   `json:"totals"`
		}
		is.NoErr(json.Unmarshal(raw, &answer))
		b := body{Currency: answer.Currency, FallbackHours: answer.FallbackHours, UnpricedHours: answer.UnpricedHours,
			Total: numbers(answer.Totals)}
		for _, s := range answer.Series {
			b.Buckets = append(b.Buckets, numbers(s))
		}
		return b
	}
	money := []string{"grid_import_cost", "grid_export_revenue", "savings", "net_cost"}

	before := read("device_id=" + device + "&frame=day&date=2026-02-10")
	is.True(before.Currency == nil)
	for _, f := range money {
		_, present := before.Total[f]
		is.True(present)                // documented fields are always there
		is.True(before.Total[f] == nil) // and null without a price
	}

	_, _, err := tariff.NewStore(d.Pool).Set(ctx, tariff.Tariff{DeviceID: device, Kind: tariff.Fixed,
		ValidFrom: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Import: "0.30", Export: "-0.02", Currency: "CHF"})
	is.NoErr(err)
	after := read("device_id=" + device + "&frame=day&date=2026-02-10")
	is.Equal(*after.Currency, "CHF")
	is.Equal(after.UnpricedHours, int64(0))
	is.Equal(after.FallbackHours, int64(0))
	near := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	for i, b := range append(after.Buckets, after.Total) {
		imp, exp, load := *b["grid_import_kwh"], *b["grid_export_kwh"], *b["load_kwh"]
		near(strconv.Itoa(i)+" grid_import_cost", b["grid_import_cost"], imp*0.30)
		near(strconv.Itoa(i)+" grid_export_revenue", b["grid_export_revenue"], exp*-0.02) // a negative feed-in price
		near(strconv.Itoa(i)+" savings", b["savings"], (load-imp)*0.30)
		near(strconv.Itoa(i)+" net_cost", b["net_cost"], imp*0.30-exp*-0.02)
	}
	// Before the price's first day: null, and counted.
	january := read("device_id=" + device + "&frame=month&date=2026-01-25")
	is.True(january.Total["savings"] == nil)
	is.True(january.UnpricedHours > 0)

	status, raw := getSeries(t, srv.URL, "device_id="+device+"&frame=day&date=2026-02-10&format=csv")
	is.Equal(status, 200)
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	is.NoErr(err)
	is.Equal(len(rows), len(after.Buckets)+1)
	for _, f := range money {
		col := -1
		for j, name := range rows[0] {
			if name == f {
				col = j
			}
		}
		is.True(col >= 0) // a column per money field
		for i, b := range after.Buckets {
			v, err := strconv.ParseFloat(rows[i+1][col], 64)
			is.NoErr(err)
			is.Equal(v, *b[f]) // the same number as the JSON
		}
	}
}
