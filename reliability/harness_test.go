package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

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
