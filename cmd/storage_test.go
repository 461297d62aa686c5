package cmd_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

func TestStorage(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		var samples []telemetry.Sample
		for ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); ts.Before(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)); ts = ts.Add(time.Minute) {
			samples = append(samples, telemetry.Sample{DeviceID: "inverter-01", TS: ts, PVPowerW: 1, SampleCount: 1})
		}
		_, err := telemetry.NewStore(d.Pool).Insert(ctx, "inverter-01", samples)
		is.NoErr(err)
		d.Pool.Close() // the command opens its own connection
		env := map[string]string{"DATABASE_URL": d.URL}

		out, _, err := run(ctx, env, "storage")
		is.NoErr(err)
		is.True(strings.Contains(out, "sungrow_samples"))
		var st struct {
			TimescaleDB bool `json:"timescaledb"`
			Relations   []struct {
				Name string `json:"name"`
				Rows int64  `json:"rows_estimate"`
			} `json:"relations"`
			Jobs []struct {
				Name string `json:"name"`
			} `json:"jobs"`
			RawRetention string `json:"raw_retention"`
		}
		storageJSON := func() {
			t.Helper()
			js, _, err := run(ctx, env, "storage", "--json")
			is.NoErr(err)
			is.NoErr(json.Unmarshal([]byte(js), &st))
		}
		storageJSON()
		is.Equal(st.TimescaleDB, d.Timescale)
		is.Equal(st.Relations[0].Name, "sungrow_samples")
		is.True(st.Jobs != nil) // [], not null, on plain PostgreSQL
		_, _, err = run(ctx, env, "storage", "policy")
		is.True(err != nil) // nothing asked
		if !d.Timescale {
			is.True(strings.Contains(out, "compression, raw retention and chunks need TimescaleDB"))
			_, _, err = run(ctx, env, "storage", "policy", "--compress-after", "7d")
			is.True(err != nil)
			return
		}
		for _, want := range []string{"sungrow_hourly", "sungrow_daily", "sungrow_monthly", "never refreshed",
			"chunk interval: 7 days", "raw retention: off, all samples kept", "Columnstore Policy", "compress_after"} {
			is.True(strings.Contains(out, want)) // status shows it
		}
		out, _, err = run(ctx, env, "storage", "policy", "--compress-after", "7d", "--chunk-interval", "7d", "--raw-retention", "off")
		is.NoErr(err)
		is.Equal(strings.Count(out, "unchanged"), 3) // idempotent, and says so
		out, _, err = run(ctx, env, "storage", "policy", "--compress-after", "14d", "--chunk-interval", "1d")
		is.NoErr(err)
		is.True(strings.Contains(out, "compression: chunks older than 14 days (was 7 days)"))
		is.True(strings.Contains(out, "chunk interval: 1 days for new chunks (was 7 days)"))
		_, _, err = run(ctx, env, "storage", "policy", "--raw-retention", "30d")
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "refresh window of sungrow_monthly"))
		_, _, err = run(ctx, env, "storage", "policy", "--raw-retention", "seven")
		is.True(err != nil)
		out, _, err = run(ctx, env, "storage", "policy", "--raw-retention", "1y")
		is.NoErr(err)
		is.True(strings.Contains(out, "raw retention: raw chunks older than 365 days"))
		out, _, err = run(ctx, env, "storage")
		is.NoErr(err)
		is.True(strings.Contains(out, "raw retention: 365 days, nothing dropped yet")) // the retention in force
		is.True(strings.Contains(out, "Raw Retention ["))                              // the job named as such
		is.True(!strings.Contains(out, "User-Defined Action"))
		storageJSON()
		is.Equal(st.RawRetention, "365 days")
		named := false
		for _, j := range st.Jobs {
			named = named || strings.HasPrefix(j.Name, "Raw Retention [")
		}
		is.True(named)
	})
}
