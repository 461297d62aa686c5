package httpapi

import "net/http"

// handleMe says which device the bearer token speaks for, so a client that holds only
// a token (the dashboard after sign-in) knows which device_id to ask about.
func handleMe() http.Handler {
	type response struct {
		DeviceID string `json:"device_id"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, response{DeviceID: authorizedDevice(r.Context())})
	})
}
