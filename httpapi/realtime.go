package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/sungrow/sungrow/metrics"
)

// handleRealtime answers with the newest sample of the token's device, through the
// cache when there is one (nil: straight from the database). The cache holds the
// encoded body, so a hit is one cache read and one write of bytes.
func handleRealtime(logger *slog.Logger, m *metrics.Metrics, store SampleStore, cache RealtimeCache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device, err := queryDevice(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		load := func(ctx context.Context) ([]byte, error) { return realtimeJSON(ctx, store, device) }
		// A request whose answer came without calling load is a hit, including one
		// that waited for another request's load of the same device.
		var loaded atomic.Bool // set in the cache's flight, which may outlive this request
		counted := func(ctx context.Context) ([]byte, error) {
			loaded.Store(true)
			return load(ctx)
		}
		var body []byte
		if cache != nil {
			body, err = cache.Get(r.Context(), device, counted)
		} else {
			body, err = counted(r.Context())
		}
		if loaded.Load() {
			m.CacheResults.WithLabelValues("miss").Inc()
		} else if err == nil {
			m.CacheResults.WithLabelValues("hit").Inc()
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body) // the status is sent; a failed write means the client left
	})
}

// realtimeJSON is the realtime answer read from the database.
func realtimeJSON(ctx context.Context, store SampleStore, device string) ([]byte, error) {
	sample, err := store.Latest(ctx, device)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(sample)
	if err != nil {
		return nil, fmt.Errorf("encode realtime sample: %w", err)
	}
	return body, nil
}

// RealtimeSource reads the realtime answer as GET /v1/realtime does, for the stream
// hub (stream.Source), so a stream's events carry the very same JSON.
type RealtimeSource struct {
	store SampleStore
	cache RealtimeCache // nil: none
}

// NewRealtimeSource reads through cache (nil: none) from store.
func NewRealtimeSource(store SampleStore, cache RealtimeCache) *RealtimeSource {
	return &RealtimeSource{store: store, cache: cache}
}

// Latest answers from the cache when there is one.
func (s *RealtimeSource) Latest(ctx context.Context, device string) ([]byte, error) {
	if s.cache == nil {
		return s.Fresh(ctx, device)
	}
	return s.cache.Get(ctx, device, func(ctx context.Context) ([]byte, error) { return realtimeJSON(ctx, s.store, device) })
}

// Fresh asks the database.
func (s *RealtimeSource) Fresh(ctx context.Context, device string) ([]byte, error) {
	return realtimeJSON(ctx, s.store, device)
}
