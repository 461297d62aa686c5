package httpapi

import (
	"net/http"

	"github.com/sungrow/sungrow/web"
)

// addRoutes lists the whole API surface.
func addRoutes(mux *http.ServeMux, deps Deps) {
	auth := requireDevice(deps.Devices)

	mux.Handle("GET /health", handleHealth())
	mux.Handle("GET /ready", handleReady(deps.Logger, deps.Ready))
	mux.Handle("GET /metrics", deps.Metrics.Handler())
	mux.Handle("GET /openapi.json", handleOpenAPI())
	mux.Handle("GET /v1/me", auth(handleMe()))
	// The dashboard. "GET /" alone would match every path; {$} keeps it to / itself.
	mux.Handle("GET /{$}", web.Page())
	mux.Handle("GET /static/", web.Assets())
	mux.Handle("POST /v1/ingest", auth(handleIngest(deps.Logger, deps.Metrics, withLateData(deps.Samples, deps.LateData), deps.Cache,
		deps.MaxRequestBytes, deps.MaxSamplesPerRequest, deps.Now, deps.Stored)))
	mux.Handle("GET /v1/realtime", auth(handleRealtime(deps.Logger, deps.Metrics, deps.Samples, deps.Cache)))
	mux.Handle("GET /v1/stream", auth(handleStream(deps.Logger, deps.Metrics, deps.Stream, deps.StreamKeepalive)))
	mux.Handle("GET /v1/series", auth(handleSeries(deps.Logger, deps.Series, deps.Now)))
	mux.Handle("GET /v1/quarantine", auth(handleQuarantine(deps.Logger, deps.Quarantine)))
	mux.Handle("GET /v1/alerts", auth(handleAlerts(deps.Logger, deps.Alerts)))
}
