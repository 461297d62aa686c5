// Package stream is the live push behind GET /v1/stream: a hub that hears, from every
// instance sharing the database, that a device has a newer sample, and hands each open
// stream the newest one. It is a package because it owns state that outlives requests
// (the streams, one latest-value slot each, and one subscription per instance) and
// its own background work, which neither a handler nor the ingest path may carry.
//
// The signal between instances is PostgreSQL LISTEN/NOTIFY, not Redis pub/sub: the
// database is the one service every instance has (Redis is optional), a notice is
// sent only after the rows committed, and a stream works the same with or without
// REDIS_URL. A notice is only a signal ("device X has a sample at ts T"): the sample
// itself is read from the database, the devices whose notices arrived together in one
// query, so a burst costs a few round trips, not one per device; a lost notice costs
// latency, never a wrong answer, and after the subscription drops and comes back each
// device with open streams is read again, so a sample stored meanwhile still arrives.
//
// The subscription holds one connection of its own, outside the pool. Where that is
// not possible (a pool of one connection, like the tests' single-connection TimescaleDB
// server, where a held LISTEN would block every query), Poll stands in: it reads the
// newest sample of each streamed device twice a second instead. Either way, a sample
// ingested through this instance is read for its streams at once, not after its own
// notice came back.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned by Subscribe when MaxClients streams are open.
var ErrFull = errors.New("too many open streams")

// ErrClosed is returned by Subscribe once the hub is ending its streams (shutdown).
var ErrClosed = errors.New("the server is shutting down")

// Source reads the newest sample of each of the devices, encoded exactly as GET
// /v1/realtime answers it, keyed by device; a device without samples is absent.
type Source interface {
	Newest(ctx context.Context, devices []string) (map[string][]byte, error)
}

// Subscription carries the notices of every instance to this one.
type Subscription interface {
	// Run listens until ctx ends. It calls notice with each payload received, and
	// synced each time it (re)starts listening: notices sent before then may have
	// been missed, so every stream is read again.
	Run(ctx context.Context, notice func(payload string), synced func())
}

// Options configure a hub. Source is required.
type Options struct {
	Source Source
	// Publish sends notices to every instance's Subscription; nil: no other instance
	// hears of this one's samples.
	Publish func(ctx context.Context, payloads []string) error
	// Subscription hears the other instances; nil: only this instance's samples.
	Subscription Subscription
	// MaxClients bounds the open streams (STREAM_MAX_CLIENTS); 0: 10000.
	MaxClients int
	Logger     *slog.Logger
}

const (
	// readTimeout bounds one read of a batch of devices.
	readTimeout = 10 * time.Second
	// readers is how many batches may be read at once: few, so a burst of notices
	// waits here, coalescing, rather than in the database pool in front of ingest.
	readers = 4
	// maxBatch bounds the devices of one read.
	maxBatch = 500
	// publishTimeout bounds one round trip of notices.
	publishTimeout = 5 * time.Second
	warnEvery      = 30 * time.Second
)

// Event is one sample as a stream sends it.
type Event struct {
	TS   time.Time
	Data []byte // the JSON of GET /v1/realtime
}

// ID is the event's id: its sample's ts, which a reconnecting client sends back as
// Last-Event-ID.
func (e *Event) ID() string { return e.TS.UTC().Format(time.RFC3339Nano) }

// Hub fans the newest sample of each device out to its open streams.
type Hub struct {
	o        Options
	instance string // tells this instance's own notices from the others'

	mu       sync.Mutex
	devices  map[string]*device // only devices with open streams
	dirty    []*device          // devices due a read, in order
	readWake chan struct{}
	open     int
	ending   bool
	end      chan struct{} // closed by EndStreams

	pubMu   sync.Mutex
	pending map[string]time.Time // device → newest ts not yet published
	pubWake chan struct{}

	readWarn, pubWarn throttle
}

// device is the hub's state for one device with open streams.
type device struct {
	id     string
	subs   map[*Stream]struct{}
	latest *Event // the newest event handed to the streams
	queued bool   // in Hub.dirty
}

// New returns a hub; Run starts its background work.
func New(o Options) *Hub {
	if o.MaxClients <= 0 {
		o.MaxClients = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Hub{
		o: o, instance: hex.EncodeToString(b),
		devices:  make(map[string]*device),
		readWake: make(chan struct{}, 1),
		end:      make(chan struct{}),
		pending:  make(map[string]time.Time),
		pubWake:  make(chan struct{}, 1),
	}
}

// Run reads what the streams need, publishes this instance's notices and listens to
// the others' until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() { h.read(ctx) })
	}
	if h.o.Subscription != nil {
		wg.Go(func() { h.o.Subscription.Run(ctx, h.received, h.resync) })
	}
	if h.o.Publish != nil {
		wg.Go(func() { h.publish(ctx) })
	}
	wg.Wait()
}

// Stored is the ingest hook (httpapi.StoredListener): it returns at once, queueing a
// read of the new sample for the device's local streams and the notice for the
// other instances, one per device however many batches arrive meanwhile.
func (h *Hub) Stored(deviceID string, newest time.Time) {
	h.notice(deviceID, newest)
	if h.o.Publish == nil {
		return
	}
	h.pubMu.Lock()
	if newest.After(h.pending[deviceID]) {
		h.pending[deviceID] = newest
	}
	h.pubMu.Unlock()
	select {
	case h.pubWake <- struct{}{}:
	default:
	}
}

// Subscribe opens a stream of the device's samples newer than after (zero: its newest
// at once, then every newer one).
func (h *Hub) Subscribe(deviceID string, after time.Time) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ending {
		return nil, ErrClosed
	}
	if h.open >= h.o.MaxClients {
		return nil, ErrFull
	}
	d := h.devices[deviceID]
	if d == nil {
		d = &device{id: deviceID, subs: make(map[*Stream]struct{})}
		h.devices[deviceID] = d
	}
	s := &Stream{hub: h, dev: d, after: after, ready: make(chan struct{}, 1)}
	d.subs[s] = struct{}{}
	h.open++
	if d.latest != nil {
		s.offer(d.latest)
	}
	h.refresh(d) // the newest sample, as it is now
	return s, nil
}

// EndStreams ends every open stream at once and refuses new ones: serve calls it when
// shutdown begins, so streams never hold the shutdown up.
func (h *Hub) EndStreams() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ending {
		h.ending = true
		close(h.end)
	}
}

// Open is the number of open streams.
func (h *Hub) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// notice says the device has a sample at ts: its streams get it unless they have it
// or a newer one already (a backfilled older sample sends nothing).
func (h *Hub) notice(deviceID string, ts time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.devices[deviceID]
	if d == nil || (d.latest != nil && !ts.After(d.latest.TS)) {
		return
	}
	h.refresh(d)
}

// resync reads every streamed device's newest sample: the subscription (re)started
// and may have missed notices, or Poll says it is time.
func (h *Hub) resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.devices {
		h.refresh(d)
	}
}

// refresh queues a read of the device's newest sample, once however often it is
// asked before the read begins. The caller holds h.mu.
func (h *Hub) refresh(d *device) {
	if d.queued {
		return
	}
	d.queued = true
	h.dirty = append(h.dirty, d)
	select {
	case h.readWake <- struct{}{}:
	default:
	}
}

// read takes the queued devices in batches, reads their newest samples in one query
// per batch and hands them to the streams, until ctx ends.
func (h *Hub) read(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.readWake:
		}
		for ctx.Err() == nil {
			batch := h.takeBatch()
			if len(batch) == 0 {
				break
			}
			ids := make([]string, len(batch))
			for i, d := range batch {
				ids[i] = d.id
			}
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			bodies, err := h.o.Source.Newest(rctx, ids)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					h.readWarn.warn(h.o.Logger, "stream: cannot read the newest samples; the next notice retries",
						"devices", len(ids), "err", err)
				}
				continue
			}
			events := make(map[string]*Event, len(bodies))
			for id, body := range bodies {
				if ev, err := event(body); err == nil {
					events[id] = ev
				}
			}
			h.mu.Lock()
			for _, d := range batch {
				if ev := events[d.id]; ev != nil {
					h.deliver(d, ev)
				}
			}
			h.mu.Unlock()
		}
	}
}

// takeBatch dequeues up to maxBatch devices that still have streams, and leaves the
// rest to another reader.
func (h *Hub) takeBatch() []*device {
	h.mu.Lock()
	defer h.mu.Unlock()
	var batch []*device
	for len(h.dirty) > 0 && len(batch) < maxBatch {
		d := h.dirty[0]
		h.dirty = h.dirty[1:]
		d.queued = false
		if h.devices[d.id] == d {
			batch = append(batch, d)
		}
	}
	if len(h.dirty) == 0 {
		h.dirty = nil // let the backing array go after a burst
	} else {
		select {
		case h.readWake <- struct{}{}:
		default:
		}
	}
	return batch
}

func event(body []byte) (*Event, error) {
	var v struct {
		TS time.Time `json:"ts"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decode the realtime sample: %w", err)
	}
	return &Event{TS: v.TS, Data: body}, nil
}

// deliver hands ev to every stream of the device if it is newer than what they got.
// The caller holds h.mu, which keeps each stream's slot moving forward only.
func (h *Hub) deliver(d *device, ev *Event) {
	if d.latest != nil && !ev.TS.After(d.latest.TS) {
		return
	}
	d.latest = ev
	for s := range d.subs {
		s.offer(ev)
	}
}

// publish sends the queued notices, all pending devices in one round trip, until ctx
// ends. A failed round trip is logged and dropped: a notice is a signal, and the next
// sample (or the other instances' next resync) brings the streams up to date.
func (h *Hub) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.pubWake:
		}
		h.pubMu.Lock()
		batch := h.pending
		h.pending = make(map[string]time.Time, len(batch))
		h.pubMu.Unlock()
		if len(batch) == 0 {
			continue // an earlier round took them
		}
		payloads := make([]string, 0, len(batch))
		for dev, ts := range batch {
			payloads = append(payloads, h.instance+" "+strconv.FormatInt(ts.UnixNano(), 10)+" "+dev)
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := h.o.Publish(pctx, payloads)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.pubWarn.warn(h.o.Logger, "stream: cannot notify the other instances; their streams catch up with the next sample",
				"devices", len(payloads), "err", err)
		}
	}
}

// received handles a notice from the subscription: "<instance> <unix ns> <device>".
func (h *Hub) received(payload string) {
	instance, rest, ok1 := strings.Cut(payload, " ")
	ns, dev, ok2 := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok1 || !ok2 || err != nil || dev == "" {
		return // not ours; the channel is public to the database's users
	}
	if instance == h.instance {
		return // Stored told the local streams already
	}
	h.notice(dev, time.Unix(0, n))
}

// Stream is one client's view of a device: a single slot holding the newest event it
// has not taken yet, so a client that stops reading holds one event, never a queue.
type Stream struct {
	hub   *Hub
	dev   *device
	slot  atomic.Pointer[Event]
	ready chan struct{}
	after time.Time // the newest ts taken; used by the stream's own goroutine only
	once  sync.Once
}

// offer puts ev in the slot and wakes the stream's reader; it never blocks. The caller
// holds the hub's lock.
func (s *Stream) offer(ev *Event) {
	s.slot.Store(ev)
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready signals that Next may have an event.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Done is closed when the hub ends every stream (shutdown).
func (s *Stream) Done() <-chan struct{} { return s.hub.end }

// Next takes the newest event newer than the last one taken, or nil.
func (s *Stream) Next() *Event {
	ev := s.slot.Swap(nil)
	if ev == nil || !ev.TS.After(s.after) {
		return nil
	}
	s.after = ev.TS
	return ev
}

// Close releases the stream; a device without streams is forgotten.
func (s *Stream) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(s.dev.subs, s)
		h.open--
		if len(s.dev.subs) == 0 && h.devices[s.dev.id] == s.dev {
			delete(h.devices, s.dev.id)
		}
	})
}

// throttle logs a warning at most once per warnEvery, counting the ones it held back.
type throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (t *throttle) warn(logger *slog.Logger, msg string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); t.last.IsZero() || now.Sub(t.last) >= warnEvery {
		logger.Warn(msg, append(args, "suppressed_since_last_warning", t.suppressed)...)
		t.last, t.suppressed = now, 0
		return
	}
	t.suppressed++
}
