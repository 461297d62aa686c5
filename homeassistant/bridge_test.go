package homeassistant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sungrow/sungrow/homeassistant"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// configs returns the discovery configs among msgs, the latest per topic.
func configs(msgs []testenv.MQTTMessage) map[string]string {
	out := map[string]string{}
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, "homeassistant/sensor/") && strings.HasSuffix(m.Topic, "/config") {
			out[m.Topic] = m.Payload
		}
	}
	return out
}

// lastState returns the latest state message of a topic among msgs.
func lastState(msgs []testenv.MQTTMessage, topic string) (map[string]any, bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Topic == topic {
			var st map[string]any
			if json.Unmarshal([]byte(msgs[i].Payload), &st) != nil {
				return nil, false
			}
			return st, true
		}
	}
	return nil, false
}

// fixedEnergy is an EnergyReader whose totals the test sets; each read takes delay.
type fixedEnergy struct {
	mu    sync.Mutex
	e     map[string]series.Energy
	delay time.Duration
	reads int
}

func (f *fixedEnergy) AllTime(_ context.Context, device string) (series.Energy, error) {
	f.mu.Lock()
	delay := f.delay
	f.reads++
	f.mu.Unlock()
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.e[device], nil
}

func (f *fixedEnergy) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fixedEnergy) set(device string, e series.Energy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.e == nil {
		f.e = map[string]series.Energy{}
	}
	f.e[device] = e
}

type bridgeSetup struct {
	broker  *testenv.Mosquitto
	url     string
	samples homeassistant.Samples
	energy  homeassistant.EnergyReader
	devices []string
	// devicesNow, if set, is asked instead of devices, as serve asks the registry.
	devicesNow func() []string
	min        time.Duration
	logs       *testenv.LogBuffer
	metrics    *metrics.Metrics
}

func startBridge(t *testing.T, s bridgeSetup) *homeassistant.Bridge {
	t.Helper()
	raw := s.url
	if raw == "" {
		raw = s.broker.URL()
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	logs := s.logs
	if logs == nil {
		logs = &testenv.LogBuffer{}
	}
	devicesNow := s.devicesNow
	if devicesNow == nil && s.devices != nil {
		list := s.devices
		devicesNow = func() []string { return list }
	}
	b, err := homeassistant.Start(context.Background(), homeassistant.Options{
		URL:             u,
		DiscoveryPrefix: "homeassistant",
		TopicPrefix:     "sungrow",
		MinInterval:     s.min,
		Version:         "1.2.3-test",
		Devices:         devicesNow,
		Recheck:         100 * time.Millisecond,
		Samples:         s.samples,
		Energy:          s.energy,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:         s.metrics,
		Backoff:         autopaho.NewConstantBackoff(250 * time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBridge(b) })
	return b
}

func closeBridge(b *homeassistant.Bridge) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b.Close(ctx)
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// insert stores n samples of device from t0+offset, 5 s apart.
func insert(t *testing.T, store *telemetry.Store, device string, offset time.Duration, n int, pv float64) time.Time {
	t.Helper()
	samples := make([]telemetry.Sample, n)
	for i := range samples {
		samples[i] = telemetry.Sample{
			DeviceID: device, TS: t0.Add(offset + time.Duration(i)*5*time.Second),
			PVPowerW: pv, LoadPowerW: 700, ExportPowerW: pv - 900, BatteryPowerW: 200, BatterySoCPct: 55, SampleCount: 1,
		}
	}
	if _, err := store.Insert(context.Background(), device, samples); err != nil {
		t.Fatal(err)
	}
	return samples[n-1].TS
}

// sensorSpec is what Home Assistant's MQTT sensor schema and its energy dashboard
// require of each of sungrow's sensors.
var sensorSpec = map[string]struct{ field, unit, deviceClass, stateClass string }{
	"pv_power":                 {"pv_power_w", "W", "power", "measurement"},
	"load_power":               {"load_power_w", "W", "power", "measurement"},
	"grid_power":               {"export_power_w", "W", "power", "measurement"},
	"battery_power":            {"battery_power_w", "W", "power", "measurement"},
	"battery_soc":              {"battery_soc_pct", "%", "battery", "measurement"},
	"battery_temp":             {"battery_temp_c", "°C", "temperature", "measurement"},
	"pv_energy":                {"pv_kwh", "kWh", "energy", "total_increasing"},
	"load_energy":              {"load_kwh", "kWh", "energy", "total_increasing"},
	"grid_import_energy":       {"grid_import_kwh", "kWh", "energy", "total_increasing"},
	"grid_export_energy":       {"grid_export_kwh", "kWh", "energy", "total_increasing"},
	"battery_charge_energy":    {"battery_charge_kwh", "kWh", "energy", "total_increasing"},
	"battery_discharge_energy": {"battery_discharge_kwh", "kWh", "energy", "total_increasing"},
}

// checkConfigs checks every discovery config of one device against the MQTT sensor
// schema and returns their unique ids.
func checkConfigs(t *testing.T, got map[string]string, device, slug string) []string {
	t.Helper()
	is := is.NewRelaxed(t)
	var ids []string
	for key, spec := range sensorSpec {
		topic := "homeassistant/sensor/sungrow_" + slug + "/" + key + "/config"
		raw, ok := got[topic]
		if !ok {
			t.Errorf("no discovery config on %s", topic)
			continue
		}
		var c map[string]any
		is.NoErr(json.Unmarshal([]byte(raw), &c))
		for _, k := range []string{"name", "unique_id", "object_id", "state_topic", "value_template", "availability",
			"unit_of_measurement", "device_class", "state_class", "device"} {
			if _, ok := c[k]; !ok {
				t.Errorf("%s: no %q", topic, k)
			}
		}
		is.Equal(c["state_topic"], "sungrow/"+slug+"/state")
		is.Equal(c["value_template"], "{{ value_json."+spec.field+" }}")
		is.Equal(c["unit_of_measurement"], spec.unit)
		is.Equal(c["device_class"], spec.deviceClass)
		is.Equal(c["state_class"], spec.stateClass)
		is.Equal(c["unique_id"], "sungrow_"+slug+"_"+key)
		is.Equal(c["object_id"], c["unique_id"])
		entity, _ := c["default_entity_id"].(string)
		is.True(validEntityID(entity))
		is.True(strings.HasPrefix(entity, "sensor.sungrow_"))
		av, _ := c["availability"].([]any)
		is.Equal(len(av), 1)
		if len(av) == 1 {
			is.Equal(av[0], map[string]any{"topic": "sungrow/status", "payload_available": "online", "payload_not_available": "offline"})
		}
		dev, _ := c["device"].(map[string]any)
		is.Equal(dev["identifiers"], []any{"sungrow_" + slug})
		is.Equal(dev["name"], "Sungrow "+device)
		is.Equal(dev["manufacturer"], "Sungrow")
		is.True(dev["model"] != "")
		is.Equal(dev["sw_version"], "1.2.3-test")
		id, _ := c["unique_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// validEntityID is Home Assistant's entity id rule: domain.object_id, each of a-z, 0-9
// and underscores, no double underscore, none at either end.
func validEntityID(id string) bool {
	domain, object, ok := strings.Cut(id, ".")
	part := func(s string) bool {
		if s == "" || strings.Contains(s, "__") || strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") {
			return false
		}
		return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
	}
	return ok && part(domain) && part(object)
}

func TestDiscoveryConfigsFollowTheSensorSchemaAndSurviveRestarts(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	insert(t, store, "inverter-01", 0, 3, 1500)
	insert(t, store, "Roof/West #2", 0, 3, 900) // needs a slug
	energy := &fixedEnergy{}
	rec := testenv.RecordMQTT(t, broker)
	m := metrics.New()
	setup := bridgeSetup{broker: broker, samples: store, energy: energy, devices: []string{"inverter-01", "Roof/West #2", "no-data-yet"}, metrics: m}
	b := startBridge(t, setup)

	slugs := map[string]string{"inverter-01": "inverter-01"}
	testenv.Await(t, "24 discovery configs", 30*time.Second, func() bool { return len(configs(rec.Since(0))) == 24 })
	got := configs(rec.Since(0))
	for topic := range got {
		if rest, ok := strings.CutPrefix(topic, "homeassistant/sensor/sungrow_roof_west__2_"); ok {
			slugs["Roof/West #2"] = "roof_west__2_" + strings.SplitN(rest, "/", 2)[0]
		}
	}
	is.True(slugs["Roof/West #2"] != "") // the odd id got a topic-safe slug
	for _, topic := range slices.Sorted(maps.Keys(got)) {
		if strings.Contains(topic, "sungrow_inverter-01/") {
			t.Logf("%s %s", topic, got[topic]) // as received, for the record
		}
	}
	var ids []string
	for device, slug := range slugs {
		ids = append(ids, checkConfigs(t, got, device, slug)...)
	}
	is.Equal(len(ids), 24)
	seen := map[string]bool{}
	for _, id := range ids {
		is.True(!seen[id]) // unique ids are unique
		seen[id] = true
	}
	for topic := range got {
		is.True(!strings.Contains(topic, "no-data-yet")) // a device without data has nothing to show
	}
	testenv.Await(t, "the online status", 10*time.Second, func() bool {
		for _, m := range rec.Since(0) {
			if m.Topic == "sungrow/status" && m.Payload == "online" {
				return true
			}
		}
		return false
	})

	// A restart publishes the same configs under the same unique ids.
	closeBridge(b)
	mark := rec.Count()
	startBridge(t, setup)
	testenv.Await(t, "24 discovery configs again", 30*time.Second, func() bool { return len(configs(rec.Since(mark))) == 24 })
	is.Equal(configs(rec.Since(mark)), got)
	_ = m
}

// hasMessage reports whether msgs hold payload on topic.
func hasMessage(msgs []testenv.MQTTMessage, topic, payload string) bool {
	for _, m := range msgs {
		if m.Topic == topic && m.Payload == payload {
			return true
		}
	}
	return false
}

func TestHomeAssistantComingOnlineGetsDiscoveryAndStateAgain(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	newest := insert(t, store, "inverter-01", 0, 3, 1500)
	energy := &fixedEnergy{}
	energy.set("inverter-01", series.Energy{PVKWh: 12.5})
	rec := testenv.RecordMQTT(t, broker)
	startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, min: 50 * time.Millisecond})
	testenv.Await(t, "discovery", 30*time.Second, func() bool { return len(configs(rec.Since(0))) == 12 })
	testenv.Await(t, "the first state", 30*time.Second, func() bool {
		st, ok := lastState(rec.Since(0), "sungrow/inverter-01/state")
		return ok && st["ts"] == newest.Format(time.RFC3339) && st["pv_kwh"] == 12.5
	})

	mark := rec.Count()
	rec.Publish(t, "homeassistant/status", "online") // Home Assistant restarted
	testenv.Await(t, "discovery again", 30*time.Second, func() bool { return len(configs(rec.Since(mark))) == 12 })
	testenv.Await(t, "the state again", 30*time.Second, func() bool {
		_, ok := lastState(rec.Since(mark), "sungrow/inverter-01/state")
		return ok
	})

	// Another instance's last will says offline: this one, alive, says online again.
	mark = rec.Count()
	rec.Publish(t, "sungrow/status", "offline")
	testenv.Await(t, "online again", 30*time.Second, func() bool { return hasMessage(rec.Since(mark), "sungrow/status", "online") })
	is.True(true)
}

func TestStateFollowsStoredBatchesAndTotalsNeverDecrease(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	energy := &fixedEnergy{}
	rec := testenv.RecordMQTT(t, broker)
	const window = time.Second
	b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, min: window})
	topic := "sungrow/inverter-01/state"

	// A burst of batches: the first goes at once, the rest are coalesced into one
	// state per window, and the last is what ends up published.
	var newest time.Time
	began := time.Now()
	for i := range 10 {
		newest = insert(t, store, "inverter-01", time.Duration(i)*time.Minute, 3, float64(1000+i))
		energy.set("inverter-01", series.Energy{PVKWh: float64(i + 1), LoadKWh: 100})
		b.Stored("inverter-01", newest)
	}
	burst := time.Since(began)
	testenv.Await(t, "the newest state", 30*time.Second, func() bool {
		st, ok := lastState(rec.Since(0), topic)
		return ok && st["ts"] == newest.Format(time.RFC3339) && st["pv_kwh"] == 10.0 && st["pv_power_w"] == 1009.0
	})
	states := 0
	for _, m := range rec.Since(0) {
		if m.Topic == topic {
			states++
		}
	}
	// One at once, then at most one per window the burst lasted, and the window's end.
	is.True(states <= 2+int(burst/window))
	t.Logf("%d batches in %s gave %d states (window %s)", 10, burst, states, window)
	st, _ := lastState(rec.Since(0), topic)
	is.Equal(st["battery_temp_c"], nil) // null: Home Assistant shows unknown
	is.Equal(st["export_power_w"], 109.0)

	// The same total summed in another order comes out a hair lower: published as before.
	mark := rec.Count()
	energy.set("inverter-01", series.Energy{PVKWh: 10 * (1 - 1e-14), LoadKWh: 100 * (1 - 1e-14)})
	b.Stored("inverter-01", newest)
	testenv.Await(t, "a state", 30*time.Second, func() bool { _, ok := lastState(rec.Since(mark), topic); return ok })
	st, _ = lastState(rec.Since(mark), topic)
	is.Equal(st["pv_kwh"], 10.0)
	is.Equal(st["load_kwh"], 100.0)

}

// TestSlowTotalsAreReadSparinglyAndStillArrive: where reading the totals is slow (the
// raw path of plain PostgreSQL), states keep the newest powers with the previous
// totals, the reads stay spaced by 20 × their duration, and the fresh totals follow.
func TestSlowTotalsAreReadSparinglyAndStillArrive(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	energy := &fixedEnergy{delay: 50 * time.Millisecond} // a 1 s energy window
	rec := testenv.RecordMQTT(t, broker)
	b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, min: 50 * time.Millisecond})
	topic := "sungrow/inverter-01/state"

	var newest time.Time
	began := time.Now()
	for i := range 20 {
		newest = insert(t, store, "inverter-01", time.Duration(i)*time.Minute, 1, float64(1000+i))
		energy.set("inverter-01", series.Energy{PVKWh: float64(i + 1)})
		b.Stored("inverter-01", newest)
		time.Sleep(50 * time.Millisecond)
	}
	burst := time.Since(began)
	testenv.Await(t, "the newest powers and totals", 30*time.Second, func() bool {
		st, ok := lastState(rec.Since(0), topic)
		return ok && st["ts"] == newest.Format(time.RFC3339) && st["pv_kwh"] == 20.0
	})
	reads, states := energy.readCount(), 0
	for _, m := range rec.Since(0) {
		if m.Topic == topic {
			states++
		}
	}
	t.Logf("%d batches in %s: %d states, %d reads of the totals", 20, burst, states, reads)
	is.True(reads <= 2+int(burst/time.Second)) // one per energy window, and the last
	is.True(states > reads)                    // the powers did not wait for them
}

func TestBrokerRestartRepublishesDiscoveryAndNewestState(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	insert(t, store, "inverter-01", 0, 3, 1500)
	energy := &fixedEnergy{}
	energy.set("inverter-01", series.Energy{PVKWh: 1})
	m := metrics.New()
	b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, min: 100 * time.Millisecond, metrics: m})
	rec := testenv.RecordMQTT(t, broker)
	testenv.Await(t, "discovery", 30*time.Second, func() bool { return len(configs(rec.Since(0))) == 12 })
	testenv.Await(t, "the connected gauge", 10*time.Second, func() bool { return testutil.ToFloat64(m.MQTTConnected) == 1 })
	is.True(testutil.ToFloat64(m.MQTTPublished) >= 13) // 12 configs and the state, at least

	broker.Stop()
	testenv.Await(t, "the connected gauge to drop", 30*time.Second, func() bool { return testutil.ToFloat64(m.MQTTConnected) == 0 })
	mark := rec.Count()
	// Ingest goes on while the broker is away; the bridge only remembers the device.
	newest := insert(t, store, "inverter-01", time.Hour, 3, 2222)
	energy.set("inverter-01", series.Energy{PVKWh: 2})
	done := make(chan struct{})
	go func() { b.Stored("inverter-01", newest); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Stored waited for the broker")
	}
	broker.Start(t) // empty: it kept nothing

	testenv.Await(t, "discovery after the restart", 60*time.Second, func() bool { return len(configs(rec.Since(mark))) == 12 })
	testenv.Await(t, "the newest state after the restart", 60*time.Second, func() bool {
		st, ok := lastState(rec.Since(mark), "sungrow/inverter-01/state")
		return ok && st["ts"] == newest.Format(time.RFC3339) && st["pv_kwh"] == 2.0
	})
	is.True(hasMessage(rec.Since(0), "sungrow/status", "online"))
}

func TestWrongPasswordOrNoBrokerIsALogLineNeverAnError(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	insert(t, store, "inverter-01", 0, 3, 1500)
	wrong := fmt.Sprintf("mqtt://%s:not-the-password@127.0.0.1:%s", broker.User, broker.Port)
	absent := "mqtt://u:p@" + testenv.FreeAddr(t)
	for name, tc := range map[string]struct{ url, log string }{
		"wrong password": {wrong, "the broker refused sungrow's user name or password (check MQTT_URL)"},
		"no broker":      {absent, "cannot connect to the broker"},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			logs := &testenv.LogBuffer{}
			m := metrics.New()
			b := startBridge(t, bridgeSetup{url: tc.url, samples: store, energy: &fixedEnergy{}, logs: logs, metrics: m})
			testenv.Await(t, "the log line", 30*time.Second, func() bool { return strings.Contains(logs.String(), tc.log) })
			b.Stored("inverter-01", t0)                                   // returns at once, publishes nothing
			is.True(!strings.Contains(logs.String(), "not-the-password")) // never the password
			is.True(!strings.Contains(logs.String(), "u:p@"))
			t.Logf("logged: %s", strings.SplitN(logs.String(), "\n", 3)[1])
		})
	}
}

func TestTLSVerifiesTheBrokerAgainstTheSystemRoots(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquittoTLS(t)
	d := testenv.New(t, testenv.Postgres)
	logs := &testenv.LogBuffer{}
	u := fmt.Sprintf("mqtts://%s:%s@127.0.0.1:%s", broker.User, broker.Password, broker.TLSPort)
	startBridge(t, bridgeSetup{url: u, samples: telemetry.NewStore(d.Pool), energy: &fixedEnergy{}, logs: logs})
	// A self-signed certificate is refused, and the log says why.
	testenv.Await(t, "the log line", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "cannot connect to the broker") && strings.Contains(logs.String(), "certificate")
	})
	is.True(!strings.Contains(logs.String(), `"msg":"mqtt: connected"`))
	is.True(!strings.Contains(logs.String(), broker.Password))
	t.Logf("logged: %s", strings.SplitN(logs.String(), "\n", 3)[1])
}

func TestADeviceWhoseTokenWasRemovedLeavesHomeAssistant(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	insert(t, store, "kept", 0, 3, 1500)
	insert(t, store, "gone", 0, 3, 900)
	energy := &fixedEnergy{}
	rec := testenv.RecordMQTT(t, broker)
	b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, devices: []string{"kept", "gone"}})
	testenv.Await(t, "both devices announced", 30*time.Second, func() bool {
		_, ok := lastState(rec.Since(0), "sungrow/gone/state")
		return len(configs(rec.Since(0))) == 24 && ok
	})

	// Restarted without gone's token: its configs and state are cleared.
	closeBridge(b)
	mark := rec.Count()
	b2 := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, devices: []string{"kept"}})
	testenv.Await(t, "gone's configs cleared", 30*time.Second, func() bool {
		n := 0
		for topic, payload := range configs(rec.Since(mark)) {
			if strings.Contains(topic, "sungrow_gone/") && payload == "" {
				n++
			}
		}
		return n == 12 && hasMessage(rec.Since(mark), "sungrow/gone/state", "")
	})
	testenv.Await(t, "kept announced again", 30*time.Second, func() bool {
		n := 0
		for topic, payload := range configs(rec.Since(mark)) {
			if strings.Contains(topic, "sungrow_kept/") && payload != "" {
				n++
			}
		}
		return n == 12
	})
	// Revoked at run time: its configs go within a recheck, with no restart.
	var mu sync.Mutex
	active := []string{"kept"}
	mark = rec.Count()
	closeBridge(b2)
	startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, devicesNow: func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(active)
	}})
	testenv.Await(t, "kept announced by the third bridge", 30*time.Second, func() bool { return len(configs(rec.Since(mark))) >= 12 })
	mark = rec.Count()
	mu.Lock()
	active = nil // kept's last token revoked
	mu.Unlock()
	testenv.Await(t, "kept's configs cleared at run time", 30*time.Second, func() bool {
		n := 0
		for topic, payload := range configs(rec.Since(mark)) {
			if strings.Contains(topic, "sungrow_kept/") && payload == "" {
				n++
			}
		}
		return n == 12
	})
	mu.Lock()
	active = []string{"kept"} // and back
	mu.Unlock()

	// Nothing of gone is retained any more: a newcomer sees kept only.
	fresh := testenv.RecordMQTT(t, broker)
	testenv.Await(t, "the retained messages", 30*time.Second, func() bool {
		_, ok := lastState(fresh.Since(0), "sungrow/kept/state") // they come in one go
		return ok && len(configs(fresh.Since(0))) >= 12
	})
	for _, m := range fresh.Since(0) {
		is.True(!strings.Contains(m.Topic, "gone") || m.Payload == "") // clears may still pass by, nothing retained
	}
}
