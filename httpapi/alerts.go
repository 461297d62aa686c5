package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/sungrow/sungrow/alerts"
)

// handleAlerts answers with the alert rules that watch the device (its own and those
// for every device), each with its state for the device and its latest deliveries.
// Webhooks show their scheme and host only: the rest of the URL is a secret.
func handleAlerts(logger *slog.Logger, lister AlertLister) http.Handler {
	type response struct {
		DeviceID string          `json:"device_id"`
		Firing   bool            `json:"firing"` // any of them fires for the device
		Alerts   []alerts.Status `json:"alerts"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device, err := queryDevice(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if lister == nil {
			respondError(w, r, logger, errStatus(http.StatusServiceUnavailable, "alerts are not configured on this server"))
			return
		}
		list, err := lister.List(r.Context(), device)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		res := response{DeviceID: device, Alerts: list}
		for _, a := range list {
			for _, d := range a.Devices {
				res.Firing = res.Firing || d.State == alerts.StateFiring
			}
		}
		encode(w, http.StatusOK, res)
	})
}
