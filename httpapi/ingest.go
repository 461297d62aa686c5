package httpapi

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/telemetry"
)

// handleIngest stores a batch of samples of the token's device and answers with how
// many were new. A malformed batch is refused whole; implausible samples in a well-formed
// one are set aside in the quarantine, in the same transaction as the rest, and named in
// the answer (see telemetry for why).
func handleIngest(logger *slog.Logger, m *metrics.Metrics, store SampleStore, cache RealtimeInvalidator,
	maxBytes int64, maxSamples int, now func() time.Time, stored []StoredListener) http.Handler {
	type response struct {
		Inserted int64 `json:"inserted"`
		// Quarantined counts the samples of this batch that were set aside, whether or
		// not the quarantine already had them (a re-sent batch says it again).
		Quarantined int               `json:"quarantined"`
		Problems    map[string]string `json:"problems,omitempty"`
	}
	warn := newWarnLimiter(time.Minute)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device := authorizedDevice(r.Context())
		received := now()
		batch, err := decodeIngest(w, r, device, maxBytes, maxSamples, received)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		inserted, err := store.InsertSettingAside(r.Context(), device, batch.samples, batch.aside, received)
		// Invalidate after every batch that reached the database, whatever it says: a
		// batch that failed after its commit (the connection dropped, the client hung
		// up) or that lost a race for the same new rows to a batch not yet done
		// invalidating must not leave a superseded answer cached.
		if len(batch.samples) > 0 && cache != nil {
			cache.Invalidate(r.Context(), device)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if inserted > 0 {
			tellStored(stored, device, batch.samples)
		}
		m.ReceivedSamples.Add(float64(len(batch.samples)))
		m.IngestedRows.Add(float64(inserted))
		res := response{Inserted: inserted}
		if len(batch.aside) > 0 {
			for _, reason := range batch.reasons {
				m.QuarantinedSamples.WithLabelValues(reason).Inc()
			}
			res.Quarantined = len(batch.aside)
			res.Problems = boundedFields(batch.problems)
			if warn.allow(device, received) {
				logger.WarnContext(r.Context(), "implausible samples set aside", "request_id", requestID(r.Context()),
					"device_id", device, "quarantined", len(batch.aside), "problems", firstFields(batch.problems, 3))
			}
		}
		encode(w, http.StatusOK, res)
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

// warnLimiter lets a warning about a device through at most once per interval, so an
// edge stuck with a wrong clock cannot flood the log.
type warnLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time // device → when it was last let through
}

func newWarnLimiter(interval time.Duration) *warnLimiter {
	return &warnLimiter{interval: interval, last: map[string]time.Time{}}
}

func (l *warnLimiter) allow(device string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[device]; ok && now.Sub(last) < l.interval && now.Sub(last) >= 0 {
		return false
	}
	l.last[device] = now
	return true
}
