package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/stream"
)

// StreamHub opens live streams of a device's samples; stream.Hub is the real one.
type StreamHub interface {
	Subscribe(deviceID string, after time.Time) (*stream.Stream, error)
}

// streamWriteTimeout is how long one write of a stream may block: a client that reads
// nothing for that long is dropped, which is what the server's WriteTimeout (lifted
// for streams) does for other responses.
const streamWriteTimeout = 30 * time.Second

var keepaliveComment = []byte(": keepalive\n\n")

// handleStream sends the device's samples as Server-Sent Events: its newest one at
// once (unless the client's Last-Event-ID says it has it), then every newer one the
// hub hears of, with a keepalive comment every keepalive.
func handleStream(logger *slog.Logger, m *metrics.Metrics, hub StreamHub, keepalive time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device, err := queryDevice(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if hub == nil {
			respondError(w, r, logger, errStatus(http.StatusServiceUnavailable, "live streaming is not available on this server"))
			return
		}
		var after time.Time
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			// An id that is not one of ours is as good as none: the client gets the newest.
			after, _ = time.Parse(time.RFC3339Nano, id)
		}
		sub, err := hub.Subscribe(device, after)
		if errors.Is(err, stream.ErrFull) || errors.Is(err, stream.ErrClosed) {
			w.Header().Set("Retry-After", "5")
			respondError(w, r, logger, errStatus(http.StatusServiceUnavailable, "%s; retry later", err.Error()))
			return
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		defer sub.Close()
		m.StreamsOpen.Inc()
		defer m.StreamsOpen.Dec()

		// The server's write deadline would cut the stream: each write gets its own.
		// (Its read deadline is no threat: net/http lifts it once the request is read.)
		rc := http.NewResponseController(w)
		send := func(b []byte) bool {
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(b); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
		w.WriteHeader(http.StatusOK)
		if !send([]byte("retry: 2000\n\n")) {
			return
		}
		tick := time.NewTicker(keepalive)
		defer tick.Stop()
		var buf []byte
		for {
			select {
			case <-r.Context().Done():
				return
			case <-sub.Done():
				return // shutdown: the stream ends now, the client reconnects elsewhere
			case <-tick.C:
				if !send(keepaliveComment) {
					return
				}
			case <-sub.Ready():
				ev := sub.Next()
				if ev == nil {
					continue
				}
				buf = append(buf[:0], "event: sample\nid: "...)
				buf = append(buf, ev.ID()...)
				buf = append(buf, "\ndata: "...)
				buf = append(buf, ev.Data...)
				buf = append(buf, "\n\n"...)
				if !send(buf) {
					return
				}
				m.StreamEvents.Inc()
			}
		}
	})
}
