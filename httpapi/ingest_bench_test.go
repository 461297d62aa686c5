package httpapi_test

// Ingest throughput, three ways, on the same machine in one run:
//
//	go test -run '^$' -bench 'Ingest' -benchtime 300x ./httpapi/
//
// BenchmarkIngestHTTP is POST /v1/ingest end to end; BenchmarkIngestDirectInsert is the
// same set-based INSERT through pgx with no HTTP, JSON or validation; BenchmarkIngestCopyFrom
// is pgx CopyFrom of the same rows, the fastest way in. Each uses 1000-sample batches
// from 4 concurrent clients into a fresh table, and reports rows/s.

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/telemetry"
)

const (
	benchClients   = 4
	benchBatchSize = 1000
)

var benchStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// benchBatch is batch k: benchBatchSize samples 5 s apart, after every earlier batch.
func benchBatch(k int) []telemetry.Sample {
	samples := make([]telemetry.Sample, benchBatchSize)
	kwh := 3.5
	for i := range samples {
		n := k*benchBatchSize + i
		samples[i] = telemetry.Sample{
			DeviceID: device, TS: benchStart.Add(time.Duration(n) * 5 * time.Second),
			PVPowerW: float64(n % 5000), PVDailyKWh: &kwh, BatteryPowerW: -120.5,
			BatterySoCPct: 55, LoadPowerW: 640.25, ExportPowerW: -20, SampleCount: 1,
		}
	}
	return samples
}

// benchBody is batch k as an edge daemon would send it.
func benchBody(k int) []byte {
	buf := make([]byte, 0, 256*benchBatchSize)
	buf = append(buf, `{"samples":[`...)
	for i, s := range benchBatch(k) {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"device_id":"`+device+`","ts":"`...)
		buf = s.TS.AppendFormat(buf, time.RFC3339)
		buf = append(buf, `","pv_power_w":`...)
		buf = strconv.AppendFloat(buf, s.PVPowerW, 'f', -1, 64)
		buf = append(buf, `,"pv_daily_kwh":3.5,"battery_power_w":-120.5,"battery_soc_pct":55,"battery_temp_c":null,"load_power_w":640.25,"export_power_w":-20}`...)
	}
	return append(buf, "]}"...)
}

// runClients spreads b.N batches over benchClients goroutines and reports rows/s.
func runClients(b *testing.B, prepare func(k int) any, send func(item any) error) {
	b.Helper()
	items := make([]any, b.N)
	for k := range items {
		items[k] = prepare(k)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= b.N {
					return
				}
				if err := send(items[k]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*benchBatchSize)/time.Since(start).Seconds(), "rows/s")
}

func BenchmarkIngestHTTP(b *testing.B) {
	d := testenv.New(b, testenv.Postgres)
	srv := newServer(b, d.Pool)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
	runClients(b, func(k int) any { return benchBody(k) }, func(item any) error {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", bytes.NewReader(item.([]byte)))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return errStatusCode(res.StatusCode)
		}
		return nil
	})
}

func BenchmarkIngestDirectInsert(b *testing.B) {
	d := testenv.New(b, testenv.Postgres)
	store := telemetry.NewStore(d.Pool)
	runClients(b, func(k int) any { return benchBatch(k) }, func(item any) error {
		_, err := store.Insert(context.Background(), device, item.([]telemetry.Sample))
		return err
	})
}

func BenchmarkIngestCopyFrom(b *testing.B) {
	d := testenv.New(b, testenv.Postgres)
	columns := []string{"device_id", "ts", "pv_power_w", "pv_daily_kwh", "battery_power_w",
		"battery_soc_pct", "battery_temp_c", "load_power_w", "export_power_w", "sample_count"}
	runClients(b, func(k int) any {
		rows := make([][]any, 0, benchBatchSize)
		for _, s := range benchBatch(k) {
			rows = append(rows, []any{s.DeviceID, s.TS, s.PVPowerW, s.PVDailyKWh, s.BatteryPowerW,
				s.BatterySoCPct, s.BatteryTempC, s.LoadPowerW, s.ExportPowerW, s.SampleCount})
		}
		return rows
	}, func(item any) error {
		_, err := d.Pool.CopyFrom(context.Background(), pgx.Identifier{"sungrow_samples"}, columns,
			pgx.CopyFromRows(item.([][]any)))
		return err
	})
}

type errStatusCode int

func (e errStatusCode) Error() string { return "status " + strconv.Itoa(int(e)) }
