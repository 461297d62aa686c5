package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// server is `sungrow serve` running in this process.
type server struct {
	base string
	logs *testenv.LogBuffer
}

// startServe runs `sungrow serve` in-process with env (LISTEN_ADDR is chosen here) until
// the test ends, and waits until it answers /health.
func startServe(t *testing.T, env map[string]string) *server {
	t.Helper()
	addr := testenv.FreeAddr(t)
	full := map[string]string{"LISTEN_ADDR": addr}
	for k, v := range env {
		full[k] = v
	}
	s := &server{base: "http://" + addr, logs: &testenv.LogBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmd.Run(ctx, []string{"serve"}, func(k string) string { return full[k] }, io.Discard, s.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s of its context ending")
		}
	})
	testenv.WaitHealthy(t, s.base, done)
	return s
}

// runCmd runs one sungrow command to completion.
func runCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := cmd.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("sungrow %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// metric sums the samples of a metric whose line contains every one of the label
// fragments, from /metrics.
func metric(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// realtimeKeys counts the cached realtime answers in Redis.
func realtimeKeys(t *testing.T, r *testenv.Redis) int {
	c := r.Client()
	defer c.Close()
	keys, err := c.Keys(context.Background(), "realtime:*").Result()
	if err != nil {
		return 0
	}
	return len(keys)
}
