package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

type deviceKey struct{}

// requireDevice admits requests that carry a known bearer token and puts the token's
// device in the request context. Every configured token is compared, in constant time,
// against a hash of the offered one, so neither the answer's timing nor its text says
// how close a guess came or whether a device exists.
func requireDevice(tokens map[string]string) func(http.Handler) http.Handler {
	type entry struct {
		hash   [sha256.Size]byte
		device string
	}
	entries := make([]entry, 0, len(tokens))
	for token, device := range tokens {
		entries = append(entries, entry{hash: sha256.Sum256([]byte(token)), device: device})
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				unauthorized(w, r, "missing or malformed Authorization header: want \"Bearer <token>\"")
				return
			}
			offered := sha256.Sum256([]byte(token))
			device := ""
			for _, e := range entries {
				if subtle.ConstantTimeCompare(offered[:], e.hash[:]) == 1 {
					device = e.device
				}
			}
			if device == "" {
				unauthorized(w, r, "unknown token")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), deviceKey{}, device)))
		})
	}
}

func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func unauthorized(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sungrow"`)
	respondError(w, r, nil, errStatus(http.StatusUnauthorized, "%s", detail))
}

// authorizedDevice returns the device of the request's token.
func authorizedDevice(ctx context.Context) string {
	device, _ := ctx.Value(deviceKey{}).(string)
	return device
}

// queryDevice reads the device_id query parameter of a read endpoint and checks that
// the token may read it.
func queryDevice(r *http.Request) (string, error) {
	device := r.URL.Query().Get("device_id")
	if device == "" {
		return "", &apiError{status: http.StatusUnprocessableEntity,
			detail: "device_id: required query parameter", fields: map[string]string{"device_id": "required"}}
	}
	if device != authorizedDevice(r.Context()) {
		return "", errStatus(http.StatusForbidden, "device_id: this token may not read that device")
	}
	return device, nil
}
