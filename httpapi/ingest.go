package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/telemetry"
)

// handleIngest stores a batch of samples of the token's device, all or nothing, and
// answers with how many were new.
func handleIngest(logger *slog.Logger, m *metrics.Metrics, store SampleStore, cache RealtimeInvalidator,
	maxBytes int64, maxSamples int, now func() time.Time, stored []StoredListener) http.Handler {
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
		if inserted > 0 {
			tellStored(stored, device, samples)
		}
		m.ReceivedSamples.Add(float64(len(samples)))
		m.IngestedRows.Add(float64(inserted))
		encode(w, http.StatusOK, response{Inserted: inserted})
	})
}

// tellStored tells the listeners that the device has new rows. When only some rows of
// the batch were new, the store does not say which, so the batch's latest ts stands in
// for the latest inserted one: it is a stored sample's ts either way, and listeners
// read the sample itself.
func tellStored(stored []StoredListener, device string, samples []telemetry.Sample) {
	if len(stored) == 0 {
		return
	}
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
