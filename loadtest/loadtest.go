// Package loadtest drives mixed, realistic traffic against a running sungrow server —
// ingest from many simulated edge daemons, realtime and series reads at fixed rates —
// and then checks in the database that every sample the server acknowledged is stored
// exactly once. It exists so that "keeps working under load and faults, loses nothing"
// is measured by one tool: `sungrow loadtest` runs it by hand, and the reliability
// tests run it while they stop Redis or restart PostgreSQL underneath the server.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Device is one simulated edge daemon: the device it speaks for and its bearer token.
type Device struct {
	ID    string
	Token string
}

// GeneratedDevices returns n devices named <prefix>-NN with tokens <prefix>-token-NN,
// the convention `sungrow loadtest --devices N` uses when no tokens are given.
func GeneratedDevices(n int, prefix string) []Device {
	devices := make([]Device, n)
	for i := range devices {
		devices[i] = Device{ID: fmt.Sprintf("%s-%02d", prefix, i+1), Token: fmt.Sprintf("%s-token-%02d", prefix, i+1)}
	}
	return devices
}

// DeviceTokens renders devices as the server's DEVICE_TOKENS value.
func DeviceTokens(devices []Device) string {
	parts := make([]string, len(devices))
	for i, d := range devices {
		parts[i] = d.Token + ":" + d.ID
	}
	return strings.Join(parts, ",")
}

// Config describes one run. Zero values take the defaults of Defaults.
type Config struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8080. Only loopback addresses are
	// accepted: this tool is for your own machine, not for someone else's server.
	BaseURL string
	Devices []Device
	// Duration is how long new work is started.
	Duration time.Duration
	// IngestEvery is each device's cadence; every post carries BatchSize samples
	// taken 5 s apart, as an edge daemon that buffers readings sends them.
	IngestEvery time.Duration
	BatchSize   int
	// RealtimeRate and SeriesRate are requests per second, spread over the devices
	// (open loop: a request is due at its time whether or not earlier ones returned).
	RealtimeRate float64
	SeriesRate   float64
	SeriesFrame  string
	// Readers bounds the concurrent read requests.
	Readers int
	// Drain is how long after Duration a batch that is still being retried may be
	// acknowledged before it is given up (and counted as abandoned).
	Drain time.Duration
	// RetryBase and RetryMax bound the ingest backoff; the server's Retry-After is a
	// floor up to RetryMax.
	RetryBase, RetryMax time.Duration
	// FaultGrace: a 5xx that ends this long after an expected fault still counts as
	// expected, since the server notices a recovery with its next request.
	FaultGrace time.Duration
	// Start is the simulated time of the first sample (default: far enough in the past
	// that the last sample of the run is not in the future).
	Start  time.Time
	Seed   uint64
	Client *http.Client
	Logger *slog.Logger
}

// Defaults are what the issue asks of a full run: 50 devices every 5 s, 500 realtime
// and 20 series reads a second.
func Defaults() Config {
	return Config{
		Duration:     60 * time.Second,
		IngestEvery:  5 * time.Second,
		BatchSize:    12,
		RealtimeRate: 500,
		SeriesRate:   20,
		SeriesFrame:  "day",
		Readers:      64,
		Drain:        30 * time.Second,
		RetryBase:    200 * time.Millisecond,
		RetryMax:     5 * time.Second,
		FaultGrace:   3 * time.Second,
	}
}

// SampleInterval is the simulated time between two samples of a device.
const SampleInterval = 5 * time.Second

func (c *Config) fill() error {
	d := Defaults()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur(&c.Duration, d.Duration)
	setDur(&c.IngestEvery, d.IngestEvery)
	setDur(&c.Drain, d.Drain)
	setDur(&c.RetryBase, d.RetryBase)
	setDur(&c.RetryMax, d.RetryMax)
	setDur(&c.FaultGrace, d.FaultGrace)
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Readers <= 0 {
		c.Readers = d.Readers
	}
	if c.SeriesFrame == "" {
		c.SeriesFrame = d.SeriesFrame
	}
	if c.RealtimeRate < 0 || c.SeriesRate < 0 {
		return errors.New("loadtest: rates must be 0 or more")
	}
	if len(c.Devices) == 0 {
		return errors.New("loadtest: no devices")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        c.Readers + len(c.Devices),
				MaxIdleConnsPerHost: c.Readers + len(c.Devices),
				IdleConnTimeout:     30 * time.Second,
			},
		}
	}
	if c.Start.IsZero() {
		span := time.Duration(c.posts()*c.BatchSize) * SampleInterval
		c.Start = time.Now().UTC().Add(-span - time.Hour).Truncate(SampleInterval)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return CheckLoopback(c.BaseURL)
}

// posts is the most batches one device can send in a run.
func (c *Config) posts() int {
	return int((c.Duration+c.Drain)/c.IngestEvery) + 2
}

// CheckLoopback refuses a URL that does not point at this machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadtest: %q is not an http:// URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("loadtest: %s is not a loopback address: load tests run against your own machine only", host)
}

// Runner is one run in progress. Fault marks a window in which the caller broke
// something on purpose, so the 5xx it causes are told apart from the ones it should not.
type Runner struct {
	cfg Config

	ingest, realtime, series *endpoint

	mu     sync.Mutex
	faults []*FaultWindow
	acked  map[string][]time.Time

	batchesAcked, batchesAbandoned, retries, rejected int64
	started                                           time.Time

	phase  atomic.Pointer[string]
	phases []phaseMark // guarded by mu

	endLoad context.CancelFunc // guarded by mu; set while Run runs
}

// Stop ends the load early, as if Duration were over: no new work starts, and batches
// still being retried get their drain. A fault test stops once it has seen recovery
// instead of guessing a Duration long enough for a loaded machine.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.endLoad != nil {
		r.endLoad()
	}
}

type phaseMark struct {
	name  string
	start time.Time
}

// Phase starts a named phase of the run ("baseline", "redis down", ...): from now on
// answers are also counted under it, so a report shows what a fault did to the numbers.
func (r *Runner) Phase(name string) {
	r.mu.Lock()
	r.phases = append(r.phases, phaseMark{name: name, start: time.Now()})
	r.mu.Unlock()
	r.phase.Store(&name)
}

// FaultWindow is a span of time in which a fault was injected.
type FaultWindow struct {
	Name string
	// Expect5xx says whether 5xx answers are expected while it lasts (a database
	// restart) or not (a Redis outage, which the cache must hide).
	Expect5xx  bool
	Start, End time.Time // End is zero while the fault lasts
}

// New checks cfg and returns a runner that has not started yet.
func New(cfg Config) (*Runner, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg:      cfg,
		ingest:   newEndpoint("ingest"),
		realtime: newEndpoint("realtime"),
		series:   newEndpoint("series"),
		acked:    make(map[string][]time.Time),
	}, nil
}

// Fault records that a fault called name begins now; call the returned function when
// it is over.
func (r *Runner) Fault(name string, expect5xx bool) (end func()) {
	w := &FaultWindow{Name: name, Expect5xx: expect5xx, Start: time.Now()}
	r.mu.Lock()
	r.faults = append(r.faults, w)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		w.End = time.Now()
		r.mu.Unlock()
	}
}

// expectedFailure says whether a failure of a request that ran from start to end falls
// in an expected fault window (or its grace period), and names it.
func (r *Runner) expectedFailure(start, end time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.faults {
		if !w.Expect5xx || w.Start.After(end) {
			continue
		}
		if w.End.IsZero() || !start.After(w.End.Add(r.cfg.FaultGrace)) {
			return w.Name, true
		}
	}
	return "", false
}

// Run drives the load for cfg.Duration (plus the drain of batches still retrying) and
// reports what happened. It returns early, with what it has, when ctx ends.
func (r *Runner) Run(ctx context.Context) Report {
	r.started = time.Now()
	stopAt := r.started.Add(r.cfg.Duration)
	loadCtx, cancel := context.WithDeadline(ctx, stopAt)
	defer cancel()
	r.mu.Lock()
	r.endLoad = cancel
	r.mu.Unlock()
	drainCtx, cancelDrain := context.WithDeadline(ctx, stopAt.Add(r.cfg.Drain))
	defer cancelDrain()

	var wg sync.WaitGroup
	for i, d := range r.cfg.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runDevice(loadCtx, drainCtx, i, d)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.runReads(loadCtx)
	}()
	wg.Wait()
	return r.report(time.Since(r.started))
}

// pick returns a device at random; reads spread over every device like dashboards do.
func (r *Runner) pick(rng *rand.Rand) Device {
	return r.cfg.Devices[rng.IntN(len(r.cfg.Devices))]
}
