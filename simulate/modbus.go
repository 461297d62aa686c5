package simulate

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/sungrow/sungrow/collect"
	"github.com/sungrow/sungrow/telemetry"
)

// EmulatedInverter serves a Generator's house live over Modbus TCP with the
// collector's register map (collect.SungrowHybrid encoded backwards), so tests, demos
// and the quickstart have an inverter to read.
type EmulatedInverter struct {
	gen    *Generator
	serial string
	now    func() time.Time

	mu     sync.Mutex
	words  collect.Words
	latest time.Time // ts of the sample words holds
	server *modbus.ModbusServer
}

// NewEmulatedInverter serves g, whose Config.End must lie beyond the time it is
// served for; serial is the inverter's serial number (at most 20 bytes are served).
func NewEmulatedInverter(g *Generator, serial string, now func() time.Time) *EmulatedInverter {
	return &EmulatedInverter{gen: g, serial: serial, now: now}
}

// Start listens on addr (HOST:PORT) until ctx ends or Stop is called.
func (e *EmulatedInverter) Start(ctx context.Context, addr string) error {
	e.advance()
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 8,
		Logger: log.New(io.Discard, "", 0),
	}, e)
	if err != nil {
		return fmt.Errorf("emulated inverter on %s: %w", addr, err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("emulated inverter on %s: %w", addr, err)
	}
	e.mu.Lock()
	e.server = srv
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.Stop()
	}()
	return nil
}

// Stop closes the listener and every session.
func (e *EmulatedInverter) Stop() {
	e.mu.Lock()
	srv := e.server
	e.server = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// advance steps the house to the present: the words always hold the newest sample
// at or before now.
func (e *EmulatedInverter) advance() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var s telemetry.Sample
	buf := make([]telemetry.Sample, 0, 1)
	stepped := false
	for (e.words == nil && !stepped) || !e.latest.Add(e.gen.cfg.Interval).After(now) {
		buf = e.gen.Next(buf, 1)
		if len(buf) == 0 {
			break // the generator's range is over: keep serving its last sample
		}
		s, e.latest, stepped = buf[0], buf[0].TS, true
	}
	if !stepped {
		return
	}
	r := collect.Reading{Serial: e.serial, DeviceType: emulatedDeviceType,
		PVPowerW: s.PVPowerW, LoadPowerW: s.LoadPowerW, ExportPowerW: s.ExportPowerW,
		BatteryPowerW: s.BatteryPowerW, BatterySoCPct: s.BatterySoCPct}
	if s.PVDailyKWh != nil {
		r.PVDailyKWh = *s.PVDailyKWh
	}
	if s.BatteryTempC != nil {
		r.BatteryTempC = *s.BatteryTempC
	}
	e.words = collect.SungrowHybrid.Encode(r)
}

// emulatedDeviceType is the code the emulator reports; the collector only logs it.
const emulatedDeviceType = 0x0E0F

// HandleInputRegisters serves function 4: every address the map lists, 0 between
// them (as a real inverter answers the documented registers we do not use).
func (e *EmulatedInverter) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	e.advance()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]uint16, req.Quantity)
	for i := range out {
		out[i] = e.words[req.Addr+uint16(i)]
	}
	return out, nil
}

// The inverter is read-only here: every other function is refused as a real
// inverter refuses what it does not offer.
func (e *EmulatedInverter) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}
func (e *EmulatedInverter) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}
func (e *EmulatedInverter) HandleHoldingRegisters(*modbus.HoldingRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalFunction
}
