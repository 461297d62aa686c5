package collect_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/collect"
)

// TestAReplyNotToTheRequestClosesTheSession is the issue's "a response that does not
// belong to the request (transaction id, unit, function) closes the session rather
// than being used": a hand-written Modbus TCP server answers the first request of its
// first session with another request's reply carrying other values; the reading
// fails, the session is closed with nothing more asked on it, and the next reading
// comes whole from a fresh session.
func TestAReplyNotToTheRequestClosesTheSession(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(h *mbap)
		reason string
	}{
		// The library skips a reply with another transaction id and keeps waiting for
		// its own, so the read ends in the request timeout.
		{"transaction id", func(h *mbap) { h.txn-- }, "timeout"},
		{"unit id", func(h *mbap) { h.unit++ }, "protocol"},
		{"function code", func(h *mbap) { h.fc = 3 }, "protocol"}, // read holding registers' answer
	}
	want := collect.Reading{Serial: "RIGHT1", DeviceType: 0x0E0F, PVPowerW: 1234, PVDailyKWh: 5.6,
		LoadPowerW: 800, ExportPowerW: 434, BatterySoCPct: 50, BatteryTempC: 20}
	other := collect.Reading{Serial: "OTHER1", DeviceType: 0x0E0F, PVPowerW: 9999, PVDailyKWh: 1.1,
		LoadPowerW: 1, ExportPowerW: 9998, BatterySoCPct: 99, BatteryTempC: 30}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			fake := startFakeModbus(t, collect.SungrowHybrid.Encode(want), collect.SungrowHybrid.Encode(other), tt.spoil)
			conf, err := collect.ParseEndpoint(fake.addr)
			is.NoErr(err)
			inv := collect.NewInverter(conf, 1, collect.SungrowHybrid, 300*time.Millisecond)
			defer inv.Close()

			_, err = inv.Read(context.Background())
			is.True(err != nil) // the wrong reply was not decoded
			t.Logf("the first reading failed: %v", err)
			is.Equal(collect.ReadReason(err), tt.reason)
			select {
			case <-fake.firstClosed:
			case <-time.After(10 * time.Second):
				t.Fatal("the session that got the wrong reply was not closed")
			}
			is.Equal(fake.firstRequests.Load(), int32(1)) // nothing more was asked on it

			got, err := inv.Read(context.Background())
			is.NoErr(err)
			is.Equal(got, want)
			is.Equal(fake.sessions.Load(), int32(2)) // from a fresh session
		})
	}
}

// mbap is the header of a Modbus TCP frame and its function code.
type mbap struct {
	txn  uint16
	unit byte
	fc   byte
}

// fakeModbus answers function 4 from words, except the first request of the first
// session: that reply carries other's words, its header spoiled.
type fakeModbus struct {
	addr          string
	words, other  collect.Words
	spoil         func(*mbap)
	sessions      atomic.Int32
	firstRequests atomic.Int32
	firstClosed   chan struct{} // closed when the client ends the first session

	mu    sync.Mutex
	conns []net.Conn
}

func startFakeModbus(t *testing.T, words, other collect.Words, spoil func(*mbap)) *fakeModbus {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeModbus{addr: ln.Addr().String(), words: words, other: other, spoil: spoil, firstClosed: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at the end of the test
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.session(c, f.sessions.Add(1))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

func (f *fakeModbus) session(c net.Conn, n int32) {
	if n == 1 {
		defer close(f.firstClosed)
	}
	for {
		head := make([]byte, 7)
		if _, err := io.ReadFull(c, head); err != nil {
			return // the client closed the session (or the test ended)
		}
		// A read request is unit id, function code, address and count: length 6.
		if binary.BigEndian.Uint16(head[4:6]) != 6 {
			return
		}
		pdu := make([]byte, 5)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		h := mbap{txn: binary.BigEndian.Uint16(head[0:2]), unit: head[6], fc: pdu[0]}
		addr, count := binary.BigEndian.Uint16(pdu[1:3]), binary.BigEndian.Uint16(pdu[3:5])
		words := f.words
		if n == 1 && f.firstRequests.Add(1) == 1 {
			words = f.other
			f.spoil(&h)
		}
		reply := binary.BigEndian.AppendUint16(nil, h.txn)
		reply = binary.BigEndian.AppendUint16(reply, 0) // protocol id
		reply = binary.BigEndian.AppendUint16(reply, 3+2*count)
		reply = append(reply, h.unit, h.fc, byte(2*count))
		for a := addr; a < addr+count; a++ {
			reply = binary.BigEndian.AppendUint16(reply, words[a]) // 0 between the map's registers
		}
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}
