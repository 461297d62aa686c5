package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sungrow/sungrow/metrics"
)

// handleIngest stores a batch of samples of the token's device, all or nothing, and
// answers with how many were new.
func handleIngest(logger *slog.Logger, m *metrics.Metrics, store SampleStore, cache RealtimeInvalidator,
	stored []StoredListener, maxBytes int64, maxSamples int, now func() time.Time) http.Handler {
	type response struct {
		Inserted int64 `json:"inserted"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device := authorizedDevice(r.Context())
		samples, err := decodeIngest(w, r, device, maxBytes, maxSamples, now())
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		inserted, err := store.Insert(r.Context(), device, samples)
		// Invalidate after every batch that reached the database, whatever it says: a
		// batch that failed after its commit (the connection dropped, the client hung
		// up) or that lost a race for the same new rows to a batch not yet done
		// invalidating must not leave a superseded answer cached.
		if len(samples) > 0 && cache != nil {
			cache.Invalidate(r.Context(), device)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if inserted > 0 && len(stored) > 0 {
			// The batch's latest ts: when only some of its rows were new it may be a
			// re-sent one, which costs a listener a needless re-read, never a miss.
			newest := samples[0].TS
			for _, s := range samples[1:] {
				if s.TS.After(newest) {
					newest = s.TS
				}
			}
			for _, l := range stored {
				l.Stored(device, newest)
			}
		}
		m.ReceivedSamples.Add(float64(len(samples)))
		m.IngestedRows.Add(float64(inserted))
		encode(w, http.StatusOK, response{Inserted: inserted})
	})
}
