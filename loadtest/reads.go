package loadtest

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// readJob is one read request and the time it was due.
type readJob struct {
	ep  *endpoint
	url string
	tok string
	due time.Time
}

// runReads sends realtime and series reads at their rates until ctx ends, with at most
// Readers in flight. Latency is measured from when a request was due, so a server
// stall shows in the percentiles instead of merely slowing the senders down; a request
// that finds every reader busy is counted as skipped.
func (r *Runner) runReads(ctx context.Context) {
	jobs := make(chan readJob, r.cfg.Readers)
	var wg sync.WaitGroup
	for range r.cfg.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r.read(ctx, j)
			}
		}()
	}
	var senders sync.WaitGroup
	date := r.cfg.Start.Format(time.DateOnly)
	dispatch := func(ep *endpoint, rate float64, seed uint64, target func(Device) string) {
		defer senders.Done()
		if rate <= 0 {
			return
		}
		rng := rand.New(rand.NewPCG(r.cfg.Seed, seed))
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		for n := 0; ; n++ {
			due := start.Add(time.Duration(n) * interval)
			if !sleep(ctx, time.Until(due)) {
				return
			}
			d := r.pick(rng)
			select {
			case jobs <- readJob{ep: ep, url: target(d), tok: d.Token, due: due}:
			default:
				ep.skip()
			}
		}
	}
	senders.Add(2)
	go dispatch(r.realtime, r.cfg.RealtimeRate, 1, func(d Device) string {
		return r.cfg.BaseURL + "/v1/realtime?device_id=" + url.QueryEscape(d.ID)
	})
	go dispatch(r.series, r.cfg.SeriesRate, 2, func(d Device) string {
		return r.cfg.BaseURL + "/v1/series?device_id=" + url.QueryEscape(d.ID) +
			"&frame=" + url.QueryEscape(r.cfg.SeriesFrame) + "&date=" + date
	})
	senders.Wait()
	close(jobs)
	wg.Wait()
}

func (r *Runner) read(ctx context.Context, j readJob) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+j.tok)
	res, err := r.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.record(j.ep, j.due, time.Now(), 0)
		}
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	r.record(j.ep, j.due, time.Now(), res.StatusCode)
}
