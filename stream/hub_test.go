package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/stream"
)

// memorySource is a device's newest sample held in memory; the hub's own logic is
// what these tests look at (the HTTP tests run it on the real database).
type memorySource struct {
	mu     sync.Mutex
	newest map[string]time.Time
	reads  int
}

func (m *memorySource) set(device string, ts time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.newest[device] = ts
}

func (m *memorySource) Newest(_ context.Context, devices []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	out := map[string][]byte{}
	for _, device := range devices {
		if ts, ok := m.newest[device]; ok {
			out[device] = fmt.Appendf(nil, `{"device_id":%q,"ts":%q}`, device, ts.Format(time.RFC3339Nano))
		}
	}
	return out, nil
}

func newHub(t *testing.T, src stream.Source) *stream.Hub {
	h := stream.New(stream.Options{Source: src})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

var t0 = time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)

func TestAStreamThatIsNeverReadHoldsOnlyTheNewestEvent(t *testing.T) {
	is := is.New(t)
	src := &memorySource{newest: map[string]time.Time{}}
	h := newHub(t, src)
	silent, err := h.Subscribe("d", time.Time{})
	is.NoErr(err)
	defer silent.Close()
	reader, err := h.Subscribe("d", time.Time{})
	is.NoErr(err)
	defer reader.Close()

	const n = 10000
	for i := 1; i <= n; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		src.set("d", ts)
		h.Stored("d", ts) // returns at once: nobody waits for the silent stream
	}
	last := t0.Add(n * time.Second)
	for {
		<-reader.Ready()
		if ev := reader.Next(); ev != nil && ev.TS.Equal(last) {
			break
		}
	}
	ev := silent.Next() // one slot: the newest, not the first of ten thousand
	is.True(ev != nil)
	is.True(ev.TS.Equal(last))
	is.Equal(silent.Next(), (*stream.Event)(nil))
}

func TestABurstOfNoticesEndsWithTheNewestSample(t *testing.T) {
	is := is.New(t)
	src := &memorySource{newest: map[string]time.Time{}}
	h := newHub(t, src)
	s, err := h.Subscribe("d", time.Time{})
	is.NoErr(err)
	defer s.Close()
	const n = 1000
	for i := 1; i <= n; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		src.set("d", ts)
		h.Stored("d", ts)
	}
	testenv.Await(t, "the newest event", 10*time.Second, func() bool {
		select {
		case <-s.Ready():
		default:
		}
		ev := s.Next()
		return ev != nil && ev.TS.Equal(t0.Add(n*time.Second))
	})
	src.mu.Lock()
	defer src.mu.Unlock()
	t.Logf("%d notices, %d reads (one at a time per device, the rest coalesced)", n, src.reads)
}

func TestEndStreamsEndsEveryStreamAndRefusesNewOnes(t *testing.T) {
	is := is.New(t)
	h := newHub(t, &memorySource{newest: map[string]time.Time{}})
	s, err := h.Subscribe("d", time.Time{})
	is.NoErr(err)
	h.EndStreams()
	<-s.Done()
	s.Close()
	_, err = h.Subscribe("d", time.Time{})
	is.Equal(err, stream.ErrClosed)
	is.Equal(h.Open(), 0)
}
