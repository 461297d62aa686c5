package homeassistant_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// TestProblemSensorFollowsAlerts: each device gets a binary_sensor of device_class
// problem, OFF until told an alert of it fires, ON while it does, OFF again after.
func TestProblemSensorFollowsAlerts(t *testing.T) {
	is := is.New(t)
	broker := testenv.StartMosquitto(t)
	d := testenv.New(t, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	insert(t, store, "inverter-01", 0, 3, 1500)
	energy := &fixedEnergy{}
	energy.set("inverter-01", series.Energy{PVKWh: 1})
	rec := testenv.RecordMQTT(t, broker)
	b := startBridge(t, bridgeSetup{broker: broker, samples: store, energy: energy, min: 10 * time.Millisecond})

	const configTopic = "homeassistant/binary_sensor/sungrow_inverter-01/problem/config"
	problem := func(mark int) any {
		st, ok := lastState(rec.Since(mark), "sungrow/inverter-01/state")
		if !ok {
			return nil
		}
		return st["problem"]
	}
	testenv.Await(t, "the first state", 30*time.Second, func() bool { return problem(0) == "OFF" })
	var cfg map[string]any
	for _, m := range rec.Since(0) {
		if m.Topic == configTopic {
			is.NoErr(json.Unmarshal([]byte(m.Payload), &cfg))
		}
	}
	is.Equal(cfg["device_class"], "problem")
	is.Equal(cfg["state_topic"], "sungrow/inverter-01/state")
	is.Equal(cfg["value_template"], "{{ value_json.problem }}")
	is.Equal(cfg["unique_id"], "sungrow_inverter-01_problem")
	is.Equal(cfg["default_entity_id"], "binary_sensor.sungrow_inverter_01_problem")

	mark := rec.Count()
	b.Problems(map[string]bool{"inverter-01": true})
	testenv.Await(t, "problem ON", 30*time.Second, func() bool { return problem(mark) == "ON" })
	mark = rec.Count()
	b.Problems(map[string]bool{})
	testenv.Await(t, "problem OFF", 30*time.Second, func() bool { return problem(mark) == "OFF" })
}
