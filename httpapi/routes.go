package httpapi

import "net/http"

// addRoutes lists the whole API surface.
func addRoutes(mux *http.ServeMux, deps Deps) {
	auth := requireDevice(deps.Tokens)

	mux.Handle("GET /health", handleHealth())
	mux.Handle("POST /v1/ingest", auth(handleIngest(deps.Logger, deps.Samples, deps.Cache,
		deps.MaxRequestBytes, deps.MaxSamplesPerRequest, deps.Now)))
}
