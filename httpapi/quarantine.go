package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/sungrow/sungrow/telemetry"
)

// quarantineLimit is how many entries GET /v1/quarantine lists at most.
const quarantineLimit = 100

// handleQuarantine answers with the device's set-aside samples: how many readings and
// why, and the newest entries with their reasons.
func handleQuarantine(logger *slog.Logger, reader QuarantineReader) http.Handler {
	type response struct {
		DeviceID string `json:"device_id"`
		telemetry.QuarantineSummary
		Entries []telemetry.QuarantineEntry `json:"entries"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device, err := queryDevice(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if reader == nil {
			respondError(w, r, logger, errStatus(http.StatusServiceUnavailable, "the quarantine is not configured on this server"))
			return
		}
		summary, entries, err := reader.Quarantined(r.Context(), device, quarantineLimit)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if entries == nil {
			entries = []telemetry.QuarantineEntry{} // "entries": [], never null
		}
		encode(w, http.StatusOK, response{DeviceID: device, QuarantineSummary: summary, Entries: entries})
	})
}
