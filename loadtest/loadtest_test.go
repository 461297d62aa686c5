package loadtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/loadtest"
	"github.com/sungrow/sungrow/telemetry"
)

func TestOnlyLoopbackTargets(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080/": true, "http://[::1]:80": true, "http://127.3.2.1": true,
		"http://10.0.0.1:8080": false, "https://example.com": false, "http://0.0.0.0:8080": false, "ftp://127.0.0.1": false, "": false,
	} {
		if err := loadtest.CheckLoopback(url); (err == nil) != ok {
			t.Errorf("%q: err %v, want accepted %t", url, err, ok)
		}
	}
}

// The check must be able to fail: an acknowledged sample that is not stored is missing.
func TestVerifyFindsMissingSamples(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stored := []telemetry.Sample{{DeviceID: "dev", TS: t0, SampleCount: 1}, {DeviceID: "dev", TS: t0.Add(5 * time.Second), SampleCount: 1}}
	_, err := telemetry.NewStore(d.Pool).Insert(context.Background(), "dev", stored)
	is.NoErr(err)

	v, err := loadtest.Verify(context.Background(), d.Pool, map[string][]time.Time{"dev": {t0, t0.Add(5 * time.Second)}})
	is.NoErr(err)
	is.True(v.OK())
	is.Equal(v.Stored, int64(2))

	v, err = loadtest.Verify(context.Background(), d.Pool, map[string][]time.Time{
		"dev": {t0, t0.Add(5 * time.Second), t0.Add(10 * time.Second)}, "other": {t0},
	})
	is.NoErr(err)
	is.True(!v.OK())
	is.Equal(v.Acked, int64(4))
	is.Equal(v.Missing, int64(2))
	is.Equal(v.Duplicated, int64(0))
}
