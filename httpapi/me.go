package httpapi

import "net/http"

// handleMe says which device the bearer token speaks for and whether it may write, so
// a client that holds only a token (the dashboard after sign-in) knows which device_id
// to ask about and that a read-only token is expected to read only.
func handleMe() http.Handler {
	type response struct {
		DeviceID string `json:"device_id"`
		Scope    string `json:"scope"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		g := authorizedGrant(r.Context())
		encode(w, http.StatusOK, response{DeviceID: g.Device, Scope: string(g.Scope)})
	})
}
