package httpapi

import "net/http"

// handleHealth says the process is up; it checks no dependency, so a load balancer
// never takes every instance out because the database blinked.
func handleHealth() http.Handler {
	type response struct {
		Status string `json:"status"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, response{Status: "ok"})
	})
}
