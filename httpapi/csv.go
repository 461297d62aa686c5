package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sungrow/sungrow/series"
)

// csvColumns are the columns of a series as CSV: the bucket's JSON field names, in the
// JSON's order, so a spreadsheet and a JSON client read the same numbers.
var csvColumns = []struct {
	name  string
	value func(b series.Bucket) string
}{
	{"bucket", func(b series.Bucket) string { return b.Bucket.Format(time.RFC3339Nano) }},
	{"avg_pv_power_w", func(b series.Bucket) string { return csvFloat(b.AvgPVPowerW) }},
	{"max_pv_power_w", func(b series.Bucket) string { return csvFloat(b.MaxPVPowerW) }},
	{"avg_battery_power_w", func(b series.Bucket) string { return csvFloat(b.AvgBatteryPowerW) }},
	{"avg_battery_soc_pct", func(b series.Bucket) string { return csvFloat(b.AvgBatterySoCPct) }},
	{"avg_load_power_w", func(b series.Bucket) string { return csvFloat(b.AvgLoadPowerW) }},
	{"avg_export_power_w", func(b series.Bucket) string { return csvFloat(b.AvgExportPowerW) }},
	{"sample_count", func(b series.Bucket) string { return strconv.FormatInt(b.SampleCount, 10) }},
	{"pv_kwh", func(b series.Bucket) string { return csvFloat(b.PVKWh) }},
	{"load_kwh", func(b series.Bucket) string { return csvFloat(b.LoadKWh) }},
	{"grid_import_kwh", func(b series.Bucket) string { return csvFloat(b.GridImportKWh) }},
	{"grid_export_kwh", func(b series.Bucket) string { return csvFloat(b.GridExportKWh) }},
	{"battery_charge_kwh", func(b series.Bucket) string { return csvFloat(b.BatteryChargeKWh) }},
	{"battery_discharge_kwh", func(b series.Bucket) string { return csvFloat(b.BatteryDischargeKWh) }},
	{"self_consumption_pct", func(b series.Bucket) string { return csvOptional(b.SelfConsumptionPct) }},
	{"autarky_pct", func(b series.Bucket) string { return csvOptional(b.AutarkyPct) }},
	{"balance_kwh", func(b series.Bucket) string { return csvFloat(b.BalanceKWh) }},
	{"pv_inverter_kwh", func(b series.Bucket) string { return csvOptional(b.PVInverterKWh) }},
	{"grid_import_cost", func(b series.Bucket) string { return csvOptional(b.GridImportCost) }},
	{"grid_export_revenue", func(b series.Bucket) string { return csvOptional(b.GridExportRevenue) }},
	{"savings", func(b series.Bucket) string { return csvOptional(b.Savings) }},
	{"net_cost", func(b series.Bucket) string { return csvOptional(b.NetCost) }},
}

// csvFloat writes v in the very text the JSON answer gives it (encoding/json: the
// fewest digits that read back as v, with an exponent below 1e-6 and from 1e21), so
// both read the same number; without the exponent, 8.3e-17 takes 34 characters that
// pandas' default parser reads back one digit off.
func csvFloat(v float64) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "" // NaN or infinity, which no series holds
	}
	return string(b)
}

// csvOptional is an empty cell for null.
func csvOptional(v *float64) string {
	if v == nil {
		return ""
	}
	return csvFloat(*v)
}

// encodeCSV writes the buckets as text/csv, a header row first.
func encodeCSV(w http.ResponseWriter, buckets []series.Bucket) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	row := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		row[i] = c.name
	}
	_ = cw.Write(row) // the status is sent; a failed write means the client went away
	for _, b := range buckets {
		for i, c := range csvColumns {
			row[i] = c.value(b)
		}
		_ = cw.Write(row)
	}
	cw.Flush()
}
