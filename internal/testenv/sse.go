package testenv

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSEEvent is one block of a text/event-stream, or one comment line (Comment set,
// the rest empty).
type SSEEvent struct {
	Event, ID, Data, Retry, Comment string
	At                              time.Time // when it arrived
}

// SSE is a test's client of GET /v1/stream: it reads and parses the stream as it
// arrives, so a test can wait for the next event.
type SSE struct {
	Status int
	Header http.Header
	Body   string // the whole body when the status is not 200
	events chan SSEEvent
	cancel context.CancelFunc
}

// OpenStream opens base/v1/stream?device_id=device with token (and Last-Event-ID when
// lastID is not empty); the stream is closed when the test ends.
func OpenStream(t testing.TB, base, token, device, lastID string) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?device_id="+device, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	s := &SSE{Status: res.StatusCode, Header: res.Header, events: make(chan SSEEvent, 1024), cancel: cancel}
	t.Cleanup(s.Close)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		s.Body = string(b)
		close(s.events)
		return s
	}
	go s.read(res.Body)
	return s
}

func (s *SSE) read(body io.ReadCloser) {
	defer close(s.events)
	defer body.Close()
	r := bufio.NewReader(body)
	var ev SSEEvent
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if ev.Event != "" || ev.ID != "" || ev.Retry != "" || len(data) > 0 {
				ev.Data, ev.At = strings.Join(data, "\n"), time.Now()
				s.events <- ev
			}
			ev, data = SSEEvent{}, nil
		case strings.HasPrefix(line, ":"):
			s.events <- SSEEvent{Comment: strings.TrimSpace(line[1:]), At: time.Now()}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Event = value
			case "id":
				ev.ID = value
			case "data":
				data = append(data, value)
			case "retry":
				ev.Retry = value
			}
		}
	}
}

// Next returns the next event or comment, failing the test after timeout or when the
// stream ended.
func (s *SSE) Next(t testing.TB, timeout time.Duration) SSEEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return SSEEvent{}
}

// NextSample returns the next "sample" event, skipping comments and retry blocks.
func (s *SSE) NextSample(t testing.TB, timeout time.Duration) SSEEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := s.Next(t, time.Until(deadline))
		if ev.Event == "sample" {
			return ev
		}
	}
}

// Ended reports whether the stream ended within timeout (events before the end are
// dropped).
func (s *SSE) Ended(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// Close hangs up.
func (s *SSE) Close() { s.cancel() }
