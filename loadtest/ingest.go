package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

// runDevice is one edge daemon: every IngestEvery it posts the next batch of its
// simulated samples and retries it until the server acknowledges it with a 200, as an
// honest client that must not lose readings does. New batches start until loadCtx
// ends; a batch already being retried may finish until drainCtx ends.
func (r *Runner) runDevice(loadCtx, drainCtx context.Context, i int, d Device) {
	cfg := r.cfg
	g, err := simulate.New(simulate.Config{
		DeviceID:    d.ID,
		Start:       cfg.Start,
		End:         cfg.Start.Add(time.Duration(cfg.posts()*cfg.BatchSize) * SampleInterval),
		Interval:    SampleInterval,
		Seed:        cfg.Seed + uint64(i),
		Latitude:    simulate.DefaultLatitude,
		PVPeakW:     simulate.DefaultPVPeakW,
		BatteryKWh:  simulate.DefaultBatteryKWh,
		BatteryMaxW: simulate.DefaultBatteryMaxW,
	})
	if err != nil {
		cfg.Logger.Error("loadtest: simulate", "device", d.ID, "err", err)
		return
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
	// Devices start spread over one cadence, as real daemons do not post in step.
	offset := time.Duration(int64(cfg.IngestEvery) * int64(i) / int64(len(cfg.Devices)))
	if !sleep(loadCtx, offset) {
		return
	}
	ticker := time.NewTicker(cfg.IngestEvery)
	defer ticker.Stop()
	buf := make([]telemetry.Sample, 0, cfg.BatchSize)
	for {
		buf = g.Next(buf, cfg.BatchSize)
		if len(buf) == 0 {
			return
		}
		if !r.postBatch(drainCtx, rng, d, buf) {
			return
		}
		select {
		case <-loadCtx.Done():
			return
		case <-ticker.C:
		}
	}
}

// postBatch sends one batch until a 200, a refusal retrying cannot fix (a 4xx other
// than 429), or the end of the drain. It says whether the device may go on: after a
// refusal it stops, as a daemon with a wrong token or device must not keep hammering.
func (r *Runner) postBatch(ctx context.Context, rng *rand.Rand, d Device, batch []telemetry.Sample) bool {
	body, err := json.Marshal(struct {
		Samples []telemetry.Sample `json:"samples"`
	}{batch})
	if err != nil {
		r.cfg.Logger.Error("loadtest: encode batch", "err", err)
		return false
	}
	delay := r.cfg.RetryBase
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := r.postOnce(ctx, d, body)
		switch {
		case status == http.StatusOK:
			r.mu.Lock()
			for _, s := range batch {
				r.acked[d.ID] = append(r.acked[d.ID], s.TS)
			}
			r.batchesAcked++
			r.mu.Unlock()
			return true
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			r.mu.Lock()
			r.rejected++
			r.mu.Unlock()
			r.cfg.Logger.Error("loadtest: ingest refused, this device stops", "device", d.ID, "status", status)
			return false
		}
		if ctx.Err() != nil {
			r.abandon(d, attempt)
			return false
		}
		r.mu.Lock()
		r.retries++
		r.mu.Unlock()
		// Full jitter, so daemons that failed together do not retry together.
		wait := delay/2 + time.Duration(rng.Int64N(int64(delay)/2+1))
		wait = min(max(wait, retryAfter), r.cfg.RetryMax)
		if !sleep(ctx, wait) {
			r.abandon(d, attempt)
			return false
		}
		delay = min(delay*2, r.cfg.RetryMax)
	}
}

func (r *Runner) abandon(d Device, attempts int) {
	r.mu.Lock()
	r.batchesAbandoned++
	r.mu.Unlock()
	r.cfg.Logger.Warn("loadtest: batch never acknowledged", "device", d.ID, "attempts", attempts)
}

// postOnce sends the body once and records the answer. A network error comes back as
// status 0 and the error.
func (r *Runner) postOnce(ctx context.Context, d Device, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.BaseURL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.Token)
	start := time.Now()
	res, err := r.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil { // the run ending is not the server's failure
			r.record(r.ingest, start, time.Now(), 0)
		}
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	r.record(r.ingest, start, time.Now(), res.StatusCode)
	secs, _ := strconv.Atoi(strings.TrimSpace(res.Header.Get("Retry-After")))
	return res.StatusCode, time.Duration(secs) * time.Second, nil
}

// sleep waits d or until ctx ends, and says whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
