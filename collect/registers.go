package collect

import (
	"fmt"
	"math"
	"strings"
)

// Kind is how a register's words encode its value.
type Kind int

const (
	U16 Kind = iota
	S16
	U32 // two words, low word first (Sungrow's word order)
	S32 // two words, low word first
	ASCII
)

// Register is one value of a register map: where it is, how it is encoded, how it
// scales to its unit, and where the address was checked.
type Register struct {
	Field  string
	Addr   uint16 // 0-based protocol address of the first word (Sungrow's document numbers from 1)
	Words  uint16
	Kind   Kind
	Scale  float64
	Source string
}

// Fields of a reading, as the register map names them.
const (
	FieldSerial       = "serial_number"
	FieldDeviceType   = "device_type_code"
	FieldPVPower      = "pv_power_w"
	FieldRunningState = "running_state"
	FieldPVDaily      = "pv_daily_kwh"
	FieldLoadPower    = "load_power_w"
	FieldExportPower  = "export_power_w"
	FieldBatteryPower = "battery_power_w"
	FieldBatterySoC   = "battery_soc_pct"
	FieldBatteryTemp  = "battery_temp_c"
)

// Running-state bits of register 13000 (address): the battery's direction.
const (
	StateCharging    = 0x2
	StateDischarging = 0x4
)

// The sources the map was checked against (input registers, function 4, 0-based).
const (
	srcEvcc    = "evcc templates/definition/meter/sungrow-hybrid.yaml"
	srcMkaiser = "mkaiser/Sungrow-SHx-Inverter-Modbus-Home-Assistant modbus_sungrow.yaml"
	srcIssue   = "Sungrow Communication Protocol of Residential Hybrid Inverter (as quoted in issue #21)"
)

// SungrowHybrid is the register map of Sungrow's SH-series hybrid inverters (SH*K-*,
// SH*.0RT). Every address below was compared with evcc's sungrow-hybrid template
// (5016 U32 total DC power, 13009 S32 export power, 13000 bits 0x2 charging / 0x4
// discharging, 13021 battery power magnitude, 13022 SoC ×0.1) and mkaiser's Home
// Assistant configuration (4999 device type, 5016, 13007 S32 load, 13009 S32 export
// "positive when exporting", 13021 "always positive battery power", 13022 ×0.1, 13024
// S16 battery temperature ×0.1, all word-swapped); the serial number (4989, 10 words)
// and the daily PV counter (13001) were not in the parts of those files read and are
// taken from Sungrow's protocol as the issue quotes it.
var SungrowHybrid = Map{
	{FieldSerial, 4989, 10, ASCII, 0, srcIssue},
	{FieldDeviceType, 4999, 1, U16, 1, srcMkaiser},
	{FieldPVPower, 5016, 2, U32, 1, srcEvcc + "; " + srcMkaiser},
	{FieldRunningState, 13000, 1, U16, 1, srcEvcc},
	{FieldPVDaily, 13001, 1, U16, 0.1, srcIssue},
	{FieldLoadPower, 13007, 2, S32, 1, srcMkaiser},
	{FieldExportPower, 13009, 2, S32, 1, srcEvcc + "; " + srcMkaiser},
	{FieldBatteryPower, 13021, 1, U16, 1, srcEvcc + "; " + srcMkaiser},
	{FieldBatterySoC, 13022, 1, U16, 0.1, srcEvcc + "; " + srcMkaiser},
	{FieldBatteryTemp, 13024, 1, S16, 0.1, srcMkaiser},
}

// Map is an inverter family's register table, ordered by address.
type Map []Register

// Block is a run of consecutive registers read in one request.
type Block struct{ Addr, Count uint16 }

// maxGap is how many unlisted registers a request may read through to join two
// groups. The gaps in SungrowHybrid (5000–5015, 13002–13006, 13011–13020, 13023) are
// documented registers that both sources read, so an inverter answers them; reading
// through them turns six requests into two, which matters on a WiNet-S.
const maxGap = 16

// Blocks are the requests that read every register of the map.
func (m Map) Blocks() []Block {
	var out []Block
	for _, r := range m {
		end := r.Addr + r.Words
		if n := len(out); n > 0 && r.Addr <= out[n-1].Addr+out[n-1].Count+maxGap {
			out[n-1].Count = max(out[n-1].Count, end-out[n-1].Addr)
			continue
		}
		out = append(out, Block{Addr: r.Addr, Count: r.Words})
	}
	return out
}

// Words are register values by address, as read.
type Words map[uint16]uint16

// Reading is one decoded read of an inverter, in the ingest API's units and signs.
type Reading struct {
	Serial        string
	DeviceType    uint16
	PVPowerW      float64
	PVDailyKWh    float64
	LoadPowerW    float64
	ExportPowerW  float64 // positive: export, negative: import
	BatteryPowerW float64 // positive: charging
	BatterySoCPct float64
	BatteryTempC  float64
}

// Decode turns the words read into a Reading. It is a pure function of the words, so
// the signs and scales are tested without a network. A missing word is an error:
// a reading is never sent half-filled.
func (m Map) Decode(w Words) (Reading, error) {
	v := map[string]float64{}
	var r Reading
	for _, reg := range m {
		words := make([]uint16, reg.Words)
		for i := range words {
			x, ok := w[reg.Addr+uint16(i)]
			if !ok {
				return Reading{}, fmt.Errorf("decode %s: register %d was not read", reg.Field, reg.Addr+uint16(i))
			}
			words[i] = x
		}
		if reg.Kind == ASCII {
			r.Serial = decodeASCII(words)
			continue
		}
		v[reg.Field] = decodeNumber(reg.Kind, words) * reg.Scale
	}
	state := uint16(v[FieldRunningState])
	battery := v[FieldBatteryPower]
	switch {
	case state&StateCharging != 0 && state&StateDischarging != 0:
		return Reading{}, fmt.Errorf("decode: running state %#04x says both charging and discharging", state)
	case state&StateDischarging != 0:
		battery = -battery
	case state&StateCharging == 0:
		battery = 0 // idle: a stale magnitude without a direction is not a flow
	}
	r.DeviceType = uint16(v[FieldDeviceType])
	r.PVPowerW = v[FieldPVPower]
	r.PVDailyKWh = round1(v[FieldPVDaily])
	r.LoadPowerW = v[FieldLoadPower]
	r.ExportPowerW = v[FieldExportPower]
	r.BatteryPowerW = battery + 0 // never -0
	r.BatterySoCPct = round1(v[FieldBatterySoC])
	r.BatteryTempC = round1(v[FieldBatteryTemp])
	if r.BatterySoCPct > 100 {
		return Reading{}, fmt.Errorf("decode: battery SoC %.1f %% is over 100", r.BatterySoCPct)
	}
	return r, nil
}

// Encode is Decode backwards: the words an inverter would serve for r. The emulated
// inverter (sungrow simulate --modbus) serves these, so both directions use one table.
func (m Map) Encode(r Reading) Words {
	state := uint16(0)
	switch {
	case r.BatteryPowerW > 0:
		state = StateCharging
	case r.BatteryPowerW < 0:
		state = StateDischarging
	}
	v := map[string]float64{
		FieldDeviceType: float64(r.DeviceType), FieldPVPower: r.PVPowerW, FieldRunningState: float64(state),
		FieldPVDaily: r.PVDailyKWh, FieldLoadPower: r.LoadPowerW, FieldExportPower: r.ExportPowerW,
		FieldBatteryPower: math.Abs(r.BatteryPowerW), FieldBatterySoC: r.BatterySoCPct, FieldBatteryTemp: r.BatteryTempC,
	}
	w := Words{}
	for _, reg := range m {
		var words []uint16
		if reg.Kind == ASCII {
			words = encodeASCII(r.Serial, int(reg.Words))
		} else {
			words = encodeNumber(reg.Kind, math.Round(v[reg.Field]/reg.Scale))
		}
		for i, x := range words {
			w[reg.Addr+uint16(i)] = x
		}
	}
	return w
}

func decodeNumber(k Kind, w []uint16) float64 {
	switch k {
	case S16:
		return float64(int16(w[0]))
	case U32:
		return float64(uint32(w[1])<<16 | uint32(w[0]))
	case S32:
		return float64(int32(uint32(w[1])<<16 | uint32(w[0])))
	default:
		return float64(w[0])
	}
}

func encodeNumber(k Kind, x float64) []uint16 {
	switch k {
	case U32, S32:
		u := uint32(int64(x))
		return []uint16{uint16(u), uint16(u >> 16)}
	default:
		return []uint16{uint16(int64(x))}
	}
}

// decodeASCII reads big-endian byte pairs and stops at the first NUL.
func decodeASCII(w []uint16) string {
	b := make([]byte, 0, 2*len(w))
	for _, x := range w {
		b = append(b, byte(x>>8), byte(x))
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

func encodeASCII(s string, words int) []uint16 {
	b := make([]byte, 2*words)
	copy(b, s)
	out := make([]uint16, words)
	for i := range out {
		out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return out
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
