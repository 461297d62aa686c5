package httpapi

import (
	"context"
	"net/http"
	"strings"
)

type deviceKey struct{}

// Authenticator tells which device a bearer token speaks for; devices.Registry is the
// real one (its lookup is one hash and one map access, see Authenticate there for why
// that tells an attacker nothing).
type Authenticator interface {
	Authenticate(token string) (deviceID string, ok bool)
}

// requireDevice admits requests that carry a known bearer token and puts the token's
// device in the request context. Every refusal reads the same whatever the device, so
// a 401 never says whether a device exists.
func requireDevice(auth Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				unauthorized(w, r, "missing or malformed Authorization header: want \"Bearer <token>\"")
				return
			}
			device, ok := auth.Authenticate(token)
			if !ok {
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
