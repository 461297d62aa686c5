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
	"github.com/sungrow/sungrow/telemetry"
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
	return encodeRealtime(sample)
}

// encodeRealtime is the one encoding of a realtime answer, shared with the stream.
func encodeRealtime(sample telemetry.Sample) ([]byte, error) {
	body, err := json.Marshal(sample)
	if err != nil {
		return nil, fmt.Errorf("encode realtime sample: %w", err)
	}
	return body, nil
}

// LatestReader reads the newest samples of many devices at once; telemetry.Store is
// the real one.
type LatestReader interface {
	LatestOf(ctx context.Context, deviceIDs []string) ([]telemetry.Sample, error)
}

// RealtimeSource is the stream hub's stream.Source: the newest samples read from the
// database and encoded as GET /v1/realtime answers, so events carry the very same JSON.
type RealtimeSource struct{ store LatestReader }

// NewRealtimeSource reads from store.
func NewRealtimeSource(store LatestReader) *RealtimeSource { return &RealtimeSource{store: store} }

// Newest returns the encoded newest sample of each device that has one.
func (s *RealtimeSource) Newest(ctx context.Context, devices []string) (map[string][]byte, error) {
	samples, err := s.store.LatestOf(ctx, devices)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(samples))
	for _, smp := range samples {
		body, err := encodeRealtime(smp)
		if err != nil {
			return nil, err
		}
		out[smp.DeviceID] = body
	}
	return out, nil
}
