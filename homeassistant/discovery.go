package homeassistant

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// sensor is one Home Assistant entity of a device, read from the device's state JSON.
type sensor struct {
	key         string // unique per device; part of the unique_id and the topic
	name        string
	field       string // the state JSON's field
	unit        string
	deviceClass string
	stateClass  string
	precision   int
}

// sensors is every entity a device gets. Power follows the API contract's signs; the
// energy sensors are what Home Assistant's energy dashboard asks for.
var sensors = []sensor{
	{"pv_power", "PV power", "pv_power_w", "W", "power", "measurement", 0},
	{"load_power", "House load", "load_power_w", "W", "power", "measurement", 0},
	{"grid_power", "Grid power (export positive)", "export_power_w", "W", "power", "measurement", 0},
	{"battery_power", "Battery power (charge positive)", "battery_power_w", "W", "power", "measurement", 0},
	{"battery_soc", "Battery state of charge", "battery_soc_pct", "%", "battery", "measurement", 0},
	{"battery_temp", "Battery temperature", "battery_temp_c", "°C", "temperature", "measurement", 1},
	{"pv_energy", "PV energy", "pv_kwh", "kWh", "energy", "total_increasing", 2},
	{"load_energy", "House load energy", "load_kwh", "kWh", "energy", "total_increasing", 2},
	{"grid_import_energy", "Grid import", "grid_import_kwh", "kWh", "energy", "total_increasing", 2},
	{"grid_export_energy", "Grid export", "grid_export_kwh", "kWh", "energy", "total_increasing", 2},
	{"battery_charge_energy", "Battery charge", "battery_charge_kwh", "kWh", "energy", "total_increasing", 2},
	{"battery_discharge_energy", "Battery discharge", "battery_discharge_kwh", "kWh", "energy", "total_increasing", 2},
}

// slug is a device id as an MQTT topic level and a Home Assistant id: lowercase
// letters, digits, _ and -. An id that had to change gets a hash of itself appended,
// so two devices never share a slug, and the same device always gets the same one
// (unique ids must survive restarts).
func slug(device string) string {
	var b strings.Builder
	changed := false
	for _, r := range device {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z': // lowered, so "A" and "a" must differ by the hash
			b.WriteRune(r - 'A' + 'a')
			changed = true
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	if !changed {
		return device
	}
	sum := sha256.Sum256([]byte(device))
	return b.String() + "_" + hex.EncodeToString(sum[:4])
}

// entityObjectID is id as the part of an entity id after "sensor.": Home Assistant
// allows only a-z, 0-9 and single underscores, not at either end (object_id it
// slugifies itself; default_entity_id it takes as it is).
func entityObjectID(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), "_")
}

// topics names every topic of one bridge.
type topics struct {
	discovery, prefix string
}

// status is where the bridge says online/offline (its last will says offline).
func (t topics) status() string { return t.prefix + "/status" }

// homeAssistantStatus is where Home Assistant announces itself (online after a start).
func (t topics) homeAssistantStatus() string { return t.discovery + "/status" }

func (t topics) state(slug string) string { return t.prefix + "/" + slug + "/state" }

// anyState matches every device's state topic.
func (t topics) anyState() string { return t.prefix + "/+/state" }

func (t topics) config(slug string, s sensor) string {
	return t.discovery + "/sensor/sungrow_" + slug + "/" + s.key + "/config"
}

func (t topics) problemConfig(slug string) string {
	return t.discovery + "/binary_sensor/sungrow_" + slug + "/problem/config"
}

// slugOfState returns the device slug of a state topic.
func (t topics) slugOfState(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix+"/")
	if !ok {
		return "", false
	}
	s, ok := strings.CutSuffix(rest, "/state")
	return s, ok && s != "" && !strings.Contains(s, "/")
}

type availability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version"`
}

// discoveryConfigs returns each sensor's retained discovery topic and payload for one
// device, in the shape of Home Assistant's MQTT sensor schema. The entity id is given
// twice: object_id for Home Assistant before 2025.10, default_entity_id for later ones,
// which deprecated object_id (discovery drops keys it does not know, so each version
// reads its own).
func discoveryConfigs(t topics, device, version string) map[string][]byte {
	type config struct {
		Name              string         `json:"name"`
		UniqueID          string         `json:"unique_id"`
		ObjectID          string         `json:"object_id"`
		DefaultEntityID   string         `json:"default_entity_id"`
		StateTopic        string         `json:"state_topic"`
		ValueTemplate     string         `json:"value_template"`
		Availability      []availability `json:"availability"`
		UnitOfMeasurement string         `json:"unit_of_measurement"`
		DeviceClass       string         `json:"device_class"`
		StateClass        string         `json:"state_class"`
		Precision         int            `json:"suggested_display_precision"`
		Device            haDevice       `json:"device"`
	}
	s := slug(device)
	dev := haDevice{
		Identifiers:  []string{"sungrow_" + s},
		Name:         "Sungrow " + device,
		Manufacturer: "Sungrow",
		Model:        "Hybrid inverter",
		SWVersion:    version,
	}
	out := make(map[string][]byte, len(sensors))
	for _, sn := range sensors {
		id := "sungrow_" + s + "_" + sn.key
		payload, _ := json.Marshal(config{ // no type here can fail to marshal
			Name:              sn.name,
			UniqueID:          id,
			ObjectID:          id,
			DefaultEntityID:   "sensor." + entityObjectID(id),
			StateTopic:        t.state(s),
			ValueTemplate:     "{{ value_json." + sn.field + " }}",
			Availability:      []availability{{Topic: t.status(), PayloadAvailable: "online", PayloadNotAvailable: "offline"}},
			UnitOfMeasurement: sn.unit,
			DeviceClass:       sn.deviceClass,
			StateClass:        sn.stateClass,
			Precision:         sn.precision,
			Device:            dev,
		})
		out[t.config(s, sn)] = payload
	}
	// The problem sensor: on while any alert of the device fires (`sungrow alert`).
	id := "sungrow_" + s + "_problem"
	payload, _ := json.Marshal(problemConfig{ // no type here can fail to marshal
		Name: "Problem", UniqueID: id, ObjectID: id, DefaultEntityID: "binary_sensor." + entityObjectID(id),
		StateTopic: t.state(s), ValueTemplate: "{{ value_json.problem }}", PayloadOn: "ON", PayloadOff: "OFF",
		Availability: []availability{{Topic: t.status(), PayloadAvailable: "online", PayloadNotAvailable: "offline"}},
		DeviceClass:  "problem", Device: dev,
	})
	out[t.problemConfig(s)] = payload
	return out
}

// problemConfig is Home Assistant's MQTT binary_sensor schema, as far as used here.
type problemConfig struct {
	Name            string         `json:"name"`
	UniqueID        string         `json:"unique_id"`
	ObjectID        string         `json:"object_id"`
	DefaultEntityID string         `json:"default_entity_id"`
	StateTopic      string         `json:"state_topic"`
	ValueTemplate   string         `json:"value_template"`
	PayloadOn       string         `json:"payload_on"`
	PayloadOff      string         `json:"payload_off"`
	Availability    []availability `json:"availability"`
	DeviceClass     string         `json:"device_class"`
	Device          haDevice       `json:"device"`
}
