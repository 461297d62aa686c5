package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

func TestQuarantineListAndPurge(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		store := telemetry.NewStore(d.Pool)
		arrived := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		setAside := func(device string, ts time.Time, receivedAt time.Time) {
			t.Helper()
			s := telemetry.Sample{DeviceID: device, TS: ts, BatterySoCPct: 50, SampleCount: 1}
			_, err := store.InsertSettingAside(ctx, device, nil, []telemetry.SetAside{{
				TS: ts, Problems: telemetry.Implausible(s, arrived), Sample: []byte(`{"device_id":"` + device + `"}`)}}, receivedAt)
			is.NoErr(err)
		}
		setAside("inverter-01", time.Unix(10, 0), arrived)
		setAside("inverter-01", time.Unix(20, 0), arrived.Add(24*time.Hour))
		setAside("inverter-02", time.Unix(30, 0), arrived)
		d.Pool.Close() // the command opens its own connection
		env := map[string]string{"DATABASE_URL": d.URL}

		out, _, err := run(ctx, env, "quarantine", "list")
		is.NoErr(err)
		is.Equal(strings.Count(out, "clock_behind"), 3) // every device
		is.True(strings.Contains(out, "inverter-02"))
		is.True(strings.Contains(out, "1970-01-01T00:00:20Z"))
		is.True(strings.Index(out, "1970-01-01T00:00:20Z") < strings.Index(out, "1970-01-01T00:00:10Z")) // newest arrival first

		out, _, err = run(ctx, env, "quarantine", "list", "inverter-01")
		is.NoErr(err)
		is.Equal(strings.Count(out, "clock_behind"), 2)
		is.True(!strings.Contains(out, "inverter-02"))

		out, _, err = run(ctx, env, "quarantine", "list", "--json")
		is.NoErr(err)
		var entries []struct {
			DeviceID string          `json:"device_id"`
			Reason   string          `json:"reason"`
			Sample   json.RawMessage `json:"sample"`
		}
		is.NoErr(json.Unmarshal([]byte(out), &entries))
		is.Equal(len(entries), 3)
		is.Equal(entries[0].Reason, "clock_behind")
		var sample bytes.Buffer
		is.NoErr(json.Compact(&sample, entries[0].Sample))
		is.Equal(sample.String(), `{"device_id":"`+entries[0].DeviceID+`"}`) // the sample as ingest got it

		_, _, err = run(ctx, env, "quarantine", "purge", "--before", "yesterday")
		is.True(err != nil) // a bad time

		out, _, err = run(ctx, env, "quarantine", "purge", "inverter-01", "--before", "2026-03-02")
		is.NoErr(err)
		is.True(strings.Contains(out, "purged 1 "))
		out, _, err = run(ctx, env, "quarantine", "list", "inverter-01")
		is.NoErr(err)
		is.True(strings.Contains(out, "1970-01-01T00:00:20Z")) // the later arrival stays
		is.True(!strings.Contains(out, "1970-01-01T00:00:10Z"))

		out, _, err = run(ctx, env, "quarantine", "purge")
		is.NoErr(err)
		is.True(strings.Contains(out, "purged 2 "))
		out, _, err = run(ctx, env, "quarantine", "list")
		is.NoErr(err)
		is.True(strings.Contains(out, "empty"))
		out, _, err = run(ctx, env, "quarantine", "list", "--json")
		is.NoErr(err)
		is.Equal(out, "[]\n")
	})
}
