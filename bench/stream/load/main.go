// Command load drives the stream benchmark against one `sungrow serve` (pid -pid):
// it gives each of -n devices (tokens s%05d, devices d%05d) a first sample, opens one
// GET /v1/stream per device, then posts each device a new sample every -every, spread
// evenly over the period, for -d. It prints the delivery latency (ingest answer →
// event arrival) p50/p99/max, the server's RSS per open stream and its CPU, and last
// how long the server takes to exit on SIGTERM with every stream open.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:18090", "server")
	n := flag.Int("n", 1000, "devices, one open stream each")
	every := flag.Duration("every", 5*time.Second, "each device's sample interval")
	dur := flag.Duration("d", 30*time.Second, "measured duration")
	pid := flag.Int("pid", 0, "the server's pid (RSS, CPU, SIGTERM)")
	flag.Parse()

	// Enough idle connections that a slow patch never turns into dialling churn.
	ingest := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *n}, Timeout: 30 * time.Second}
	streams := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	devs := make([]*dev, *n)
	for i := range devs {
		devs[i] = &dev{token: fmt.Sprintf("s%05d", i), id: fmt.Sprintf("d%05d", i), answered: map[string]time.Time{}, arrived: map[string]time.Time{}}
	}

	// A first sample each, so every stream opens with an event.
	parallel(devs, 32, func(d *dev) {
		if !d.post(ingest, *base, start) {
			fmt.Fprintln(os.Stderr, "first sample refused")
			os.Exit(1)
		}
	})
	for _, d := range devs {
		clear(d.answered) // its event is the one each stream opens with
	}
	rssBefore := procKB(*pid, "VmRSS:")

	var opened sync.WaitGroup
	opened.Add(len(devs))
	var ended atomic.Int64
	opening := make(chan struct{}, 64) // a connect storm would only time out headers
	for _, d := range devs {
		go d.stream(streams, *base, opening, &opened, &ended)
	}
	opened.Wait()
	rssOpen := procKB(*pid, "VmRSS:")
	fmt.Printf("streams=%d open; server RSS %d KiB before, %d KiB with them open: %.1f KiB per stream\n",
		len(devs), rssBefore, rssOpen, float64(rssOpen-rssBefore)/float64(len(devs)))

	// Each device posts every `every`, device i at offset i/n of the period.
	cpu0, t0 := cpuTicks(*pid), time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	stop := t0.Add(*dur)
	for i, d := range devs {
		wg.Go(func() {
			next := t0.Add(time.Duration(int64(*every) * int64(i) / int64(len(devs))))
			for k := 1; next.Before(stop); k++ {
				time.Sleep(time.Until(next))
				if !d.post(ingest, *base, start.Add(time.Duration(k)*5*time.Second)) {
					failed.Add(1)
				}
				next = next.Add(*every)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu1 := cpuTicks(*pid)
	// The last events' arrival: late ones count with their latency, only those that
	// never come are missing.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && outstanding(devs) > 0; {
		time.Sleep(50 * time.Millisecond)
	}
	rssEnd := procKB(*pid, "VmRSS:")

	var lat []time.Duration
	sent, missing, early := 0, 0, 0
	for _, d := range devs {
		d.mu.Lock()
		for id, a := range d.answered {
			sent++
			arr, ok := d.arrived[id]
			if !ok {
				missing++
				continue
			}
			l := arr.Sub(a)
			if l < 0 { // the event beat the ingest's own answer to the client
				early++
				l = 0
			}
			lat = append(lat, l)
		}
		d.mu.Unlock()
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("samples=%d failed_ingests=%d events=%d missing=%d before_answer=%d\n", sent, failed.Load(), len(lat), missing, early)
	fmt.Printf("latency ingest answer → event: p50=%s p99=%s max=%s\n",
		q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond))
	fmt.Printf("server CPU %.0f%% of one core over %s (%.0f ingests/s); RSS at the end %d KiB\n",
		100*float64(cpu1-cpu0)/100/elapsed.Seconds(), elapsed.Round(time.Second), float64(sent)/elapsed.Seconds(), rssEnd)

	if *pid != 0 {
		t := time.Now()
		_ = syscall.Kill(*pid, syscall.SIGTERM)
		for alive(*pid) || ended.Load() < int64(len(devs)) {
			if time.Since(t) > 60*time.Second {
				fmt.Println("server still running 60 s after SIGTERM")
				os.Exit(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Printf("SIGTERM with %d streams open: every stream ended and the server exited after %s\n",
			len(devs), time.Since(t).Round(time.Millisecond))
	}
	if missing > 0 || failed.Load() > 0 {
		os.Exit(1)
	}
}

func outstanding(devs []*dev) int {
	n := 0
	for _, d := range devs {
		d.mu.Lock()
		for id := range d.answered {
			if _, ok := d.arrived[id]; !ok {
				n++
			}
		}
		d.mu.Unlock()
	}
	return n
}

type dev struct {
	token, id string
	mu        sync.Mutex
	answered  map[string]time.Time // event id (ts) → when its ingest was answered
	arrived   map[string]time.Time // event id → when the event arrived
}

func (d *dev) post(c *http.Client, base string, ts time.Time) bool {
	id := ts.Format(time.RFC3339Nano)
	body := fmt.Sprintf(`{"samples":[{"device_id":%q,"ts":%q,"pv_power_w":%d,"battery_power_w":-400,"battery_soc_pct":70,"load_power_w":900,"export_power_w":100}]}`,
		d.id, id, ts.Unix()%5000)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false
	}
	d.mu.Lock()
	d.answered[id] = time.Now()
	d.mu.Unlock()
	return true
}

func (d *dev) stream(c *http.Client, base string, opening chan struct{}, opened *sync.WaitGroup, ended *atomic.Int64) {
	defer ended.Add(1)
	opening <- struct{}{}
	var res *http.Response
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/stream?device_id="+d.id, nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		var err error
		res, err = c.Do(req)
		if err == nil && res.StatusCode == http.StatusOK {
			break
		}
		if attempt == 5 {
			fmt.Fprintf(os.Stderr, "stream %s: %v %v\n", d.id, err, res)
			os.Exit(1)
		}
		time.Sleep(time.Second)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	first := true
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		id, ok := bytes.CutPrefix(line, []byte("id: "))
		if !ok {
			continue
		}
		now := time.Now()
		if first { // the newest sample at once: the stream is open
			first = false
			<-opening
			opened.Done()
			continue
		}
		d.mu.Lock()
		d.arrived[string(bytes.TrimSpace(id))] = now
		d.mu.Unlock()
	}
}

func parallel(devs []*dev, workers int, f func(*dev)) {
	ch := make(chan *dev)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range ch {
				f(d)
			}
		})
	}
	for _, d := range devs {
		ch <- d
	}
	close(ch)
	wg.Wait()
}

func procKB(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// cpuTicks is the server's user+system time in clock ticks (100 a second on Linux).
func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// alive: the process exists and is not a zombie waiting for its parent.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}
