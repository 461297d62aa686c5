package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every endpoint; a test checks real responses against it.
//
//go:embed openapi.json
var openAPIDocument []byte

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPIDocument)
	})
}
