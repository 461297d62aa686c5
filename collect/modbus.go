package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/simonvetter/modbus"
)

// Inverter is one Modbus session to an inverter, opened when needed and closed after
// any error, so the next read starts a fresh session (a response that does not belong
// to its request is an error of the library: ErrBadUnitId, ErrProtocolError, or a
// transaction id it skips and then times out on).
type Inverter struct {
	Map     Map
	Timeout time.Duration
	// Pause is the wait between the requests of one reading: a WiNet-S drops sessions
	// when hurried.
	Pause time.Duration

	conf   modbus.ClientConfiguration
	unit   uint8
	client *modbus.ModbusClient
}

// ParseEndpoint turns --modbus (HOST, HOST:PORT, tcp://HOST:PORT or
// rtu:///dev/ttyUSB0?baud=9600) into the library's configuration.
func ParseEndpoint(s string) (modbus.ClientConfiguration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return modbus.ClientConfiguration{}, errors.New("empty: want HOST[:PORT] or rtu:///dev/ttyUSB0?baud=9600")
	}
	if strings.HasPrefix(s, "rtu://") {
		u, err := url.Parse(s)
		if err != nil || u.Path == "" {
			return modbus.ClientConfiguration{}, fmt.Errorf("%q: want rtu:///dev/ttyUSB0?baud=9600", s)
		}
		baud := uint64(9600)
		if b := u.Query().Get("baud"); b != "" {
			if baud, err = strconv.ParseUint(b, 10, 32); err != nil || baud == 0 {
				return modbus.ClientConfiguration{}, fmt.Errorf("%q: baud %q is not a positive number", s, b)
			}
		}
		return modbus.ClientConfiguration{URL: "rtu://" + u.Path, Speed: uint(baud), DataBits: 8, Parity: modbus.PARITY_NONE, StopBits: 1}, nil
	}
	hostPort := strings.TrimPrefix(s, "tcp://")
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		hostPort = net.JoinHostPort(hostPort, "502")
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || host == "" {
		return modbus.ClientConfiguration{}, fmt.Errorf("%q: want HOST[:PORT]", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return modbus.ClientConfiguration{}, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return modbus.ClientConfiguration{URL: "tcp://" + hostPort}, nil
}

// NewInverter prepares a session to the endpoint (see ParseEndpoint) and unit id;
// nothing is dialled until the first Read.
func NewInverter(conf modbus.ClientConfiguration, unit uint8, m Map, timeout time.Duration) *Inverter {
	conf.Timeout = timeout
	// The library logs to stdout by default; its errors reach our log as return values.
	conf.Logger = log.New(io.Discard, "", 0)
	return &Inverter{Map: m, Timeout: timeout, Pause: 100 * time.Millisecond, conf: conf, unit: unit}
}

// Read reads every block of the map and decodes it. Any error closes the session.
func (inv *Inverter) Read(ctx context.Context) (Reading, error) {
	w, err := inv.readWords(ctx)
	if err != nil {
		inv.Close()
		return Reading{}, err
	}
	r, err := inv.Map.Decode(w)
	if err != nil {
		inv.Close() // words that do not decode may be another request's answer
		return Reading{}, fmt.Errorf("read inverter: %w", err)
	}
	return r, nil
}

func (inv *Inverter) readWords(ctx context.Context) (Words, error) {
	if inv.client == nil {
		c, err := modbus.NewClient(&inv.conf)
		if err != nil {
			return nil, readError{"connect", fmt.Errorf("modbus client %s: %w", inv.conf.URL, err)}
		}
		if err := c.Open(); err != nil {
			return nil, readError{"connect", fmt.Errorf("connect %s: %w", inv.conf.URL, err)}
		}
		if err := c.SetUnitId(inv.unit); err != nil {
			c.Close()
			return nil, readError{"connect", fmt.Errorf("unit %d: %w", inv.unit, err)}
		}
		inv.client = c
	}
	w := Words{}
	for i, b := range inv.Map.Blocks() {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(inv.Pause):
			}
		}
		regs, err := inv.client.ReadRegisters(b.Addr, b.Count, modbus.INPUT_REGISTER)
		if err != nil {
			return nil, readError{reason(err), fmt.Errorf("read input registers %d+%d: %w", b.Addr, b.Count, err)}
		}
		if len(regs) != int(b.Count) {
			return nil, readError{"protocol", fmt.Errorf("read input registers %d+%d: got %d words", b.Addr, b.Count, len(regs))}
		}
		for j, x := range regs {
			w[b.Addr+uint16(j)] = x
		}
	}
	return w, nil
}

// Close ends the session, if one is open.
func (inv *Inverter) Close() {
	if inv.client != nil {
		inv.client.Close()
		inv.client = nil
	}
}

// readError carries the reason a read failed, for the failed-reads metric.
type readError struct {
	reason string
	err    error
}

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

func reason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, modbus.ErrRequestTimedOut), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, modbus.ErrBadUnitId), errors.Is(err, modbus.ErrProtocolError),
		errors.Is(err, modbus.ErrBadTransactionId), errors.Is(err, modbus.ErrUnexpectedParameters):
		return "protocol"
	case errors.Is(err, modbus.ErrIllegalFunction), errors.Is(err, modbus.ErrIllegalDataAddress),
		errors.Is(err, modbus.ErrIllegalDataValue), errors.Is(err, modbus.ErrServerDeviceFailure),
		errors.Is(err, modbus.ErrServerDeviceBusy), errors.Is(err, modbus.ErrGWPathUnavailable),
		errors.Is(err, modbus.ErrGWTargetFailedToRespond):
		return "exception"
	}
	return "io"
}

// ReadReason is the failed-reads label of err: connect, timeout, protocol, exception,
// decode or io.
func ReadReason(err error) string {
	var re readError
	if errors.As(err, &re) {
		return re.reason
	}
	return "decode"
}
