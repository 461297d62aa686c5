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
		load := func(ctx context.Context) ([]byte, error) {
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
