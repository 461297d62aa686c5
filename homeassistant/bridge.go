// Package homeassistant is sungrow's MQTT bridge to Home Assistant: each device with
// data announces its sensors by MQTT discovery (retained configs under the discovery
// prefix), its state follows every ingest that stored something (one retained JSON per
// device, at most once per MQTT_MIN_INTERVAL_S), and an availability topic carries a
// last will. Ingest only marks a device dirty; one goroutine of the bridge does all the
// reading and publishing, so a slow or absent broker never reaches a request. Every
// instance of serve publishes: all messages are retained and computed from the shared
// database, so a duplicate replaces an equal message, and no election can stall.
//
// The client is github.com/eclipse/paho.golang with autopaho: the Eclipse Paho
// project's maintained MQTT v5 client, whose connection manager already reconnects
// with backoff, reports each failed attempt (with the broker's CONNACK reason) and
// calls back on every new connection, which is where discovery is published again.
// Those are the parts a bridge must get right and should not write itself.
package homeassistant

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// Options configure a Bridge.
type Options struct {
	// URL is the broker: mqtt://[user:password@]host[:port], or mqtts:// verified
	// against the system's roots.
	URL             *url.URL
	DiscoveryPrefix string // Home Assistant's, "homeassistant" by default
	TopicPrefix     string // heads the state and status topics
	// MinInterval is the least time between two state messages of a device.
	MinInterval time.Duration
	Version     string // sungrow's, shown as the devices' sw_version
	// Devices lists the devices that have a token now (devices.Registry.Devices). A
	// device with samples but none (its tokens were revoked) gets its discovery
	// configs and state cleared, so it leaves Home Assistant. Nil: every device with
	// samples is shown.
	Devices func() []string
	// Recheck is how often Devices is asked whether the list changed; 0: 5 s.
	Recheck time.Duration
	Samples Samples
	Energy  EnergyReader
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Backoff is the wait before connection attempt n (0: the first); nil: 1 s growing
	// to at most 30 s, jittered.
	Backoff func(n int) time.Duration
}

// publishTimeout bounds one publish; a message that times out is sent again later.
const publishTimeout = 10 * time.Second

// retryDelay is how soon a device whose state could not be read or published is
// tried again.
const retryDelay = 2 * time.Second

// energyCostFactor spaces the reads of a device's energy totals: after a read that
// took d, the next waits at least energyCostFactor × d, so the reads take at most 1/20
// of the database's time per device. On the aggregates a read takes milliseconds and
// every state carries fresh totals; on plain PostgreSQL a read sums every raw sample of
// the device (seconds for a month of 5 s samples), and states in between carry the
// previous totals with the newest powers, the fresh totals following at the end of the
// energy window.
const energyCostFactor = 20

// Bridge publishes to one broker. It is a httpapi.StoredListener.
type Bridge struct {
	opts   Options
	t      topics
	log    *slog.Logger
	m      *metrics.Metrics
	cm     *autopaho.ConnectionManager
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	connected bool
	resync    bool // announce every device again and send all their state
	epoch     int  // counts resyncs, so an announcement in flight during one is redone
	sayOnline bool // publish online again (a peer's last will said offline)
	// lastConnectError is the last failed attempt's message, "" once connected.
	lastConnectError string
	devices          map[string]*device
	active           map[string]bool          // Devices as last seen; nil: no list, all shown
	tops             map[string]series.Energy // by slug: the highest totals seen retained on the broker
}

// device is what the bridge remembers of one device.
type device struct {
	slug      string
	dirty     bool          // stored samples not yet in a published state
	lastSent  time.Time     // when the last state went out
	announced bool          // discovery configs published on this connection
	removed   bool          // has samples but no token: cleared, not announced
	cleared   bool          // its configs were cleared on this connection
	top       series.Energy // the totals last published
	problem   bool          // an alert of the device fires
	// energy is the last read of the totals; stale: a batch was stored since;
	// energyNext: the earliest time they may be read again (see energyCostFactor).
	energy     series.Energy
	hasEnergy  bool
	stale      bool
	energyNext time.Time
}

// Start connects to the broker in the background and returns at once: an unreachable
// broker or refused credentials are logged, retried with backoff, and never an error
// here, so serve starts without its broker.
func Start(ctx context.Context, opts Options) (*Bridge, error) {
	if opts.URL == nil || opts.Samples == nil || opts.Energy == nil {
		return nil, errors.New("homeassistant: URL, Samples and Energy are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Backoff == nil {
		opts.Backoff = autopaho.NewExponentialBackoff(time.Second, 30*time.Second, 2*time.Second, 2)
	}
	// The connection outlives ctx (serve's, cancelled by SIGTERM) until Close has
	// flushed and said offline; Disconnect ends it.
	connCtx := context.WithoutCancel(ctx)
	workCtx, cancel := context.WithCancel(connCtx)
	b := &Bridge{
		opts:    opts,
		t:       topics{discovery: opts.DiscoveryPrefix, prefix: opts.TopicPrefix},
		log:     opts.Logger.With("component", "homeassistant"),
		m:       opts.Metrics,
		wake:    make(chan struct{}, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
		devices: map[string]*device{},
		tops:    map[string]series.Energy{},
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 5 * time.Second
	}
	b.opts = opts
	b.active = b.activeDevices()
	for d := range b.active {
		b.device(d)
	}
	cm, err := autopaho.NewConnection(connCtx, b.clientConfig())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("homeassistant: start MQTT client: %w", err)
	}
	b.cm = cm
	b.log.Info("mqtt: connecting", "broker", b.broker())
	go b.run(workCtx)
	return b, nil
}

// broker is the broker's URL without credentials, for logs.
func (b *Bridge) broker() string {
	u := *b.opts.URL
	u.User = nil
	return u.String()
}

func (b *Bridge) clientConfig() autopaho.ClientConfig {
	server := *b.opts.URL
	server.User = nil // autopaho puts the URL in its errors: keep the password out
	if server.Port() == "" {
		port := "1883"
		if server.Scheme == "mqtts" {
			port = "8883"
		}
		server.Host += ":" + port
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{&server},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              b.opts.Backoff,
		ConnectTimeout:                10 * time.Second,
		OnConnectionUp:                b.connectionUp,
		OnConnectionDown:              b.connectionDown,
		OnConnectError:                b.connectError,
		ClientConfig: paho.ClientConfig{
			ClientID:          clientID(),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){b.received},
		},
	}
	if server.Scheme == "mqtts" {
		cfg.TlsCfg = &tls.Config{ServerName: server.Hostname(), MinVersion: tls.VersionTLS12}
	}
	if u := b.opts.URL.User; u != nil {
		cfg.ConnectUsername = u.Username()
		if p, ok := u.Password(); ok {
			cfg.ConnectPassword = []byte(p)
		}
	}
	// Retained, so Home Assistant sees offline whenever this instance vanished.
	cfg.WillMessage = &paho.WillMessage{Topic: b.t.status(), Payload: []byte("offline"), QoS: 1, Retain: true}
	return cfg
}

// clientID is unique per process: two instances with one id would take turns
// throwing each other off the broker.
func clientID() string {
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	return "sungrow-" + hex.EncodeToString(r)
}

func (b *Bridge) connectionUp(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	b.log.Info("mqtt: connected", "broker", b.broker())
	b.m.MQTTConnected.Set(1)
	b.mu.Lock()
	b.lastConnectError = ""
	b.mu.Unlock()
	// Subscribing waits for the broker: not in this callback, which must not block.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		_, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
			{Topic: b.t.homeAssistantStatus(), QoS: 1},
			{Topic: b.t.status(), QoS: 1, NoLocal: true},
			// Retained states from before a restart or of another instance: their
			// totals are the floor of ours (see monotone). Our own we know already.
			{Topic: b.t.anyState(), QoS: 1, NoLocal: true},
		}})
		if err != nil {
			b.log.Warn("mqtt: subscribe failed: Home Assistant restarts will not trigger discovery until the next reconnect", "err", err)
		}
		b.mu.Lock()
		b.connected, b.resync = true, true
		b.mu.Unlock()
		b.poke()
	}()
}

func (b *Bridge) connectionDown() bool {
	b.mu.Lock()
	b.connected = false
	b.mu.Unlock()
	b.m.MQTTConnected.Set(0)
	b.log.Warn("mqtt: connection lost, reconnecting", "broker", b.broker())
	return true
}

// connectError logs a failed connection attempt: the first of a kind at warn or error,
// the same again at debug until a connection succeeds, so an absent broker costs one
// line, not one per attempt.
func (b *Bridge) connectError(err error) {
	level, msg, attrs := slog.LevelWarn, "mqtt: cannot connect to the broker; retrying", []any{"broker", b.broker(), "err", err.Error()}
	var refused *autopaho.ConnackError
	if errors.As(err, &refused) && (refused.ReasonCode == 0x86 || refused.ReasonCode == 0x87) {
		level, msg = slog.LevelError, "mqtt: the broker refused sungrow's user name or password (check MQTT_URL); retrying"
		attrs = []any{"broker", b.broker(), "reason_code", refused.ReasonCode}
	}
	b.mu.Lock()
	if b.lastConnectError == msg {
		level = slog.LevelDebug
	}
	b.lastConnectError = msg
	b.mu.Unlock()
	b.log.Log(context.Background(), level, msg, attrs...)
}

// received handles what the subscriptions bring. It runs on the client's goroutine,
// so it only records and wakes the publisher.
func (b *Bridge) received(pr paho.PublishReceived) (bool, error) {
	topic, payload := pr.Packet.Topic, string(pr.Packet.Payload)
	switch {
	case topic == b.t.homeAssistantStatus():
		if payload == "online" {
			b.log.Info("mqtt: Home Assistant announced itself, publishing discovery again")
			b.mu.Lock()
			b.resync = true
			b.mu.Unlock()
			b.poke()
		}
	case topic == b.t.status():
		// Another instance's last will: we are still here.
		if payload == "offline" {
			b.mu.Lock()
			b.sayOnline = true
			b.mu.Unlock()
			b.poke()
		}
	default:
		s, ok := b.t.slugOfState(topic)
		if !ok {
			return false, nil
		}
		var st state
		if err := json.Unmarshal(pr.Packet.Payload, &st); err != nil {
			return true, nil // not ours to judge
		}
		b.mu.Lock()
		b.tops[s] = higher(b.tops[s], st.Energy)
		b.mu.Unlock()
	}
	return true, nil
}

// Stored marks the device dirty and wakes the publisher; it never waits.
func (b *Bridge) Stored(deviceID string, _ time.Time) {
	b.mu.Lock()
	d := b.device(deviceID)
	d.dirty, d.stale = true, true
	b.mu.Unlock()
	b.poke()
}

// Problems hears which devices have an alert firing (after each alert check) and
// publishes the state of those whose problem sensor changed. It returns at once.
func (b *Bridge) Problems(firing map[string]bool) {
	b.mu.Lock()
	changed := false
	for id := range firing {
		b.device(id)
	}
	for id, d := range b.devices {
		if d.problem != firing[id] {
			d.problem, d.dirty, changed = firing[id], true, true
		}
	}
	b.mu.Unlock()
	if changed {
		b.poke()
	}
}

// device returns the record of a device, creating it; b.mu is held.
func (b *Bridge) device(id string) *device {
	d, ok := b.devices[id]
	if !ok {
		d = &device{slug: slug(id)}
		b.devices[id] = d
	}
	return d
}

func (b *Bridge) poke() {
	select {
	case b.wake <- struct{}{}:
	default: // already awake
	}
}

// Close sends what is still pending, says offline and disconnects, within ctx.
func (b *Bridge) Close(ctx context.Context) {
	b.cancel()
	<-b.done
	b.mu.Lock()
	connected := b.connected
	b.mu.Unlock()
	if connected {
		b.flush(ctx)
		// A clean disconnect does not fire the last will: say it ourselves.
		b.publish(ctx, b.t.status(), []byte("offline"))
	}
	if err := b.cm.Disconnect(ctx); err != nil {
		b.log.Warn("mqtt: disconnect", "err", err)
	}
	b.m.MQTTConnected.Set(0)
}

// run is the publisher: it wakes on a poke or when the next window of a dirty device
// ends.
func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	tick := time.NewTicker(b.opts.Recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-timer.C:
		case <-tick.C:
			if b.opts.Devices != nil {
				b.recheck()
			}
			continue // recheck pokes when there is work
		}
		if next := b.work(ctx); next > 0 {
			timer.Reset(next)
		}
	}
}

// work publishes what is due and returns when to look again (0: on the next poke).
func (b *Bridge) work(ctx context.Context) time.Duration {
	b.mu.Lock()
	if !b.connected {
		b.mu.Unlock()
		return 0 // the next connection resyncs everything
	}
	resync, sayOnline := b.resync, b.sayOnline
	b.resync, b.sayOnline = false, false
	b.mu.Unlock()

	if resync {
		if err := b.markAll(ctx); err != nil {
			b.log.Warn("mqtt: list devices", "err", err)
			b.mu.Lock()
			b.resync = true
			b.mu.Unlock()
			return retryDelay
		}
	}
	if resync || sayOnline {
		if !b.publish(ctx, b.t.status(), []byte("online")) {
			b.mu.Lock()
			b.sayOnline = true
			b.mu.Unlock()
			return retryDelay
		}
	}

	// Until nothing is due: a device just published may be due again at once, or
	// later (its totals stale), which only a fresh look at every device tells.
	for {
		var next time.Duration
		ids := b.due(time.Now(), &next)
		if len(ids) == 0 {
			return next
		}
		for i, id := range ids {
			if ctx.Err() != nil {
				return 0
			}
			if !b.publishDevice(ctx, id, false) {
				b.mu.Lock()
				for _, id := range ids[i:] {
					b.devices[id].dirty = true
				}
				b.mu.Unlock()
				return retryDelay
			}
		}
	}
}

// markAll makes every known device (with samples, or configured) due for discovery
// and state.
func (b *Bridge) markAll(ctx context.Context) error {
	ids, err := b.opts.Samples.Devices(ctx)
	if err != nil {
		return err
	}
	active := b.activeDevices()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		b.device(id)
	}
	b.active = active
	for id := range active {
		b.device(id)
	}
	for id, d := range b.devices {
		d.dirty, d.announced, d.cleared = true, false, false
		d.removed = b.active != nil && !b.active[id]
	}
	b.epoch++
	return nil
}

// activeDevices is Devices as a set; nil without a list.
func (b *Bridge) activeDevices() map[string]bool {
	if b.opts.Devices == nil {
		return nil
	}
	set := map[string]bool{}
	for _, d := range b.opts.Devices() {
		set[d] = true
	}
	return set
}

// recheck starts a resync when the devices with a token changed (one was added, or
// all tokens of one revoked), so a removed device leaves Home Assistant within
// Recheck.
func (b *Bridge) recheck() {
	now := b.activeDevices()
	b.mu.Lock()
	changed := !maps.Equal(now, b.active)
	if changed {
		b.resync = true
	}
	b.mu.Unlock()
	if changed {
		b.poke()
	}
}

// due takes the devices whose window has ended, marking them clean and sent now (a
// Stored that arrives while they are published dirties them again, for the next
// window; publishDevice moves the mark to the publish itself, so the database reads
// in between never shorten a window), and sets *next to when the first of the others
// ends. A device is due when it is dirty, or when its last state carried totals that
// a later batch made stale and their energy window has ended too.
func (b *Bridge) due(now time.Time, next *time.Duration) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id, d := range b.devices {
		at := d.lastSent.Add(b.opts.MinInterval)
		switch {
		case d.dirty:
		case d.stale && d.hasEnergy:
			if d.energyNext.After(at) {
				at = d.energyNext
			}
		default:
			continue
		}
		if wait := at.Sub(now); wait > 0 {
			if *next == 0 || wait < *next {
				*next = wait
			}
			continue
		}
		d.dirty, d.lastSent = false, now
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// flush publishes every dirty device now, whatever its window, before a shutdown.
func (b *Bridge) flush(ctx context.Context) {
	b.mu.Lock()
	var ids []string
	for id, d := range b.devices {
		if d.dirty {
			d.dirty = false
			ids = append(ids, id)
		}
	}
	b.mu.Unlock()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		b.publishDevice(ctx, id, true)
	}
}

// publishDevice announces a device (once per connection) and publishes its state: the
// newest sample read now, and the totals read now unless their energy window is still
// open (fresh: read them regardless, as on shutdown). A device without samples has
// nothing to show yet and succeeds doing nothing. It reports whether the device needs
// no retry.
func (b *Bridge) publishDevice(ctx context.Context, id string, fresh bool) bool {
	b.mu.Lock()
	removed := b.device(id).removed
	b.mu.Unlock()
	if removed {
		return b.clear(ctx, id)
	}
	latest, err := b.opts.Samples.Latest(ctx, id)
	if errors.Is(err, telemetry.ErrNotFound) {
		return true
	}
	if err != nil {
		b.log.Warn("mqtt: read the newest sample", "device", id, "err", err)
		return false
	}
	if !b.readEnergy(ctx, id, fresh) {
		return false
	}

	b.mu.Lock()
	d := b.device(id)
	energy, announced, s, epoch, problem := d.energy, d.announced, d.slug, b.epoch, d.problem
	top := higher(d.top, b.tops[s])
	b.mu.Unlock()

	if !announced {
		configs := discoveryConfigs(b.t, id, b.opts.Version)
		for _, topic := range slices.Sorted(maps.Keys(configs)) {
			if !b.publish(ctx, topic, configs[topic]) {
				return false
			}
		}
	}
	published := monotone(energy, top)
	b.mu.Lock()
	d.lastSent = time.Now() // the window runs from the state's own publish
	b.mu.Unlock()
	payload, _ := json.Marshal(state{ // no type here can fail to marshal
		TS:            latest.TS.UTC(),
		PVPowerW:      latest.PVPowerW,
		LoadPowerW:    latest.LoadPowerW,
		ExportPowerW:  latest.ExportPowerW,
		BatteryPowerW: latest.BatteryPowerW,
		BatterySoCPct: latest.BatterySoCPct,
		BatteryTempC:  latest.BatteryTempC,
		Energy:        published,
		Problem:       onOff(problem),
	})
	ok := b.publish(ctx, b.t.state(s), payload)
	b.mu.Lock()
	if !announced && epoch == b.epoch {
		d.announced = true
	}
	if ok {
		d.top = published
	}
	b.mu.Unlock()
	return ok
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

// clear removes a device from Home Assistant (once per connection): an empty retained
// payload on each of its config topics deletes the entity, and on its state topic the
// retained state.
func (b *Bridge) clear(ctx context.Context, id string) bool {
	b.mu.Lock()
	d := b.device(id)
	done, s := d.cleared, d.slug
	b.mu.Unlock()
	if done {
		return true
	}
	topics := slices.Sorted(maps.Keys(discoveryConfigs(b.t, id, b.opts.Version)))
	for _, topic := range append(topics, b.t.state(s)) {
		if !b.publish(ctx, topic, nil) {
			return false
		}
	}
	b.log.Info("mqtt: cleared the discovery configs of a device without a token", "device", id)
	b.mu.Lock()
	d.cleared = true
	b.mu.Unlock()
	return true
}

// readEnergy reads the device's totals into its record if they are stale and their
// window has ended (or fresh, or never read), and reports false if that failed.
func (b *Bridge) readEnergy(ctx context.Context, id string, fresh bool) bool {
	b.mu.Lock()
	d := b.device(id)
	read := !d.hasEnergy || (d.stale && (fresh || !time.Now().Before(d.energyNext)))
	if read {
		d.stale = false // a Stored during the read makes them stale again
	}
	b.mu.Unlock()
	if !read {
		return true
	}
	began := time.Now()
	energy, err := b.opts.Energy.AllTime(ctx, id)
	took := time.Since(began)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		d.stale = true
		b.log.Warn("mqtt: read the energy totals", "device", id, "err", err)
		return false
	}
	d.energy, d.hasEnergy, d.energyNext = energy, true, time.Now().Add(energyCostFactor*took)
	return true
}

// publish sends one retained message at QoS 1 and counts the outcome.
func (b *Bridge) publish(ctx context.Context, topic string, payload []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err := b.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1, Retain: true})
	if err != nil {
		b.m.MQTTPublishErrors.Inc()
		b.log.Debug("mqtt: publish", "topic", topic, "err", err)
		return false
	}
	b.m.MQTTPublished.Inc()
	return true
}
