package homeassistant

import (
	"context"
	"time"

	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// EnergyReader gives a device's cumulative energy: series.Service.AllTime, the totals
// of frame=all, so Home Assistant shows what GET /v1/series says.
type EnergyReader interface {
	AllTime(ctx context.Context, deviceID string) (series.Energy, error)
}

// Samples is what the bridge reads of the samples; telemetry.Store is the real one.
type Samples interface {
	// Devices lists every device with samples.
	Devices(ctx context.Context) ([]string, error)
	// Latest returns a device's newest sample, or telemetry.ErrNotFound.
	Latest(ctx context.Context, deviceID string) (telemetry.Sample, error)
}

// state is the one retained message per device that every sensor reads a field of.
type state struct {
	TS            time.Time `json:"ts"`
	PVPowerW      float64   `json:"pv_power_w"`
	LoadPowerW    float64   `json:"load_power_w"`
	ExportPowerW  float64   `json:"export_power_w"`
	BatteryPowerW float64   `json:"battery_power_w"`
	BatterySoCPct float64   `json:"battery_soc_pct"`
	BatteryTempC  *float64  `json:"battery_temp_c"` // null: Home Assistant shows unknown
	series.Energy
	// Problem is ON while an alert of the device fires (its binary_sensor), else OFF.
	Problem string `json:"problem"`
}

// wobble is how far below an earlier total a new one may fall and still be the same
// total: sums of the same float8 rows taken in another order (the aggregates against
// the raw path, a refresh moving rows from the real-time part into the
// materialization, another instance) differ in their last bits, far below this.
const wobble = 1e-9

// monotone returns the totals to publish given the highest ones published or seen
// before (top). Home Assistant reads any decrease of a total_increasing sensor as a
// meter reset (it then counts the new value again in full) or, if small, logs the
// sensor as faulty; so a total that is below top by no more than floating-point
// wobble publishes top instead. A real decrease (samples deleted) is published as it
// is: that is a reset, and Home Assistant should see one.
func monotone(next, top series.Energy) series.Energy {
	keep := func(n, t float64) float64 {
		if n < t && t-n <= wobble*t+wobble {
			return t
		}
		return n
	}
	return series.Energy{
		PVKWh:               keep(next.PVKWh, top.PVKWh),
		LoadKWh:             keep(next.LoadKWh, top.LoadKWh),
		GridImportKWh:       keep(next.GridImportKWh, top.GridImportKWh),
		GridExportKWh:       keep(next.GridExportKWh, top.GridExportKWh),
		BatteryChargeKWh:    keep(next.BatteryChargeKWh, top.BatteryChargeKWh),
		BatteryDischargeKWh: keep(next.BatteryDischargeKWh, top.BatteryDischargeKWh),
	}
}

// higher is the larger of each total, for remembering the top.
func higher(a, b series.Energy) series.Energy {
	return series.Energy{
		PVKWh:               max(a.PVKWh, b.PVKWh),
		LoadKWh:             max(a.LoadKWh, b.LoadKWh),
		GridImportKWh:       max(a.GridImportKWh, b.GridImportKWh),
		GridExportKWh:       max(a.GridExportKWh, b.GridExportKWh),
		BatteryChargeKWh:    max(a.BatteryChargeKWh, b.BatteryChargeKWh),
		BatteryDischargeKWh: max(a.BatteryDischargeKWh, b.BatteryDischargeKWh),
	}
}
