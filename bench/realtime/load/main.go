// Command load drives the realtime benchmark: at most speed with -c connections
// (closed loop, for the peak rate), or at a fixed -rate (open loop, latency measured
// from when each request was due, so a stall is not hidden by the requests it delays).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	conns := flag.Int("c", 32, "connections")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warm", time.Second, "unmeasured warm-up before it")
	rate := flag.Float64("rate", 0, "requests per second; 0: as fast as possible")
	auth := flag.String("auth", "", "Authorization header value")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: load [-c N] [-d D] [-rate R] [-auth H] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns,
	}, Timeout: 10 * time.Second}
	var failed atomic.Int64
	do := func() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if *auth != "" {
			req.Header.Set("Authorization", *auth)
		}
		res, err := client.Do(req)
		if err != nil {
			failed.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			failed.Add(1)
		}
	}

	if *rate == 0 {
		run := func(d time.Duration) (int64, time.Duration) {
			var n atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			end := start.Add(d)
			for range *conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(end) {
						do()
						n.Add(1)
					}
				}()
			}
			wg.Wait()
			return n.Load(), time.Since(start)
		}
		run(*warm)
		failed.Store(0)
		n, took := run(*dur)
		fmt.Printf("rps=%.0f requests=%d failed=%d\n", float64(n)/took.Seconds(), n, failed.Load())
		return
	}

	// Open loop: request i is due at start + i/rate, whoever is free sends it.
	measure := func(d time.Duration, record bool) []time.Duration {
		interval := time.Duration(float64(time.Second) / *rate)
		total := int(d / interval)
		due := make(chan time.Time, total)
		var mu sync.Mutex
		lat := make([]time.Duration, 0, total)
		var wg sync.WaitGroup
		for range *conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range due {
					do()
					if record {
						l := time.Since(t)
						mu.Lock()
						lat = append(lat, l)
						mu.Unlock()
					}
				}
			}()
		}
		start := time.Now()
		for i := range total {
			t := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(t))
			due <- t
		}
		close(due)
		wg.Wait()
		return lat
	}
	measure(*warm, false)
	failed.Store(0)
	lat := measure(*dur, true)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("rate=%.0f requests=%d failed=%d p50=%s p99=%s max=%s\n", *rate, len(lat), failed.Load(),
		pct(0.50), pct(0.99), lat[len(lat)-1])
}
