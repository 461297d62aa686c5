package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/sungrow/sungrow/devices"
)

type grantKey struct{}

// Authenticator tells which device a bearer token speaks for, and with which scope;
// devices.Registry is the real one (its lookup is one hash and one map access, see
// Authenticate there for why that tells an attacker nothing).
type Authenticator interface {
	Authenticate(token string) (devices.Grant, bool)
}

// requireDevice admits requests that carry a known bearer token and puts the token's
// grant in the request context. Every refusal reads the same whatever the device, so
// a 401 never says whether a device exists.
//
// It is also the one place a token's scope is enforced: a read-only token passes for
// every GET (and HEAD) of its device, whatever the path, and is refused anything else,
// so an endpoint added later is read-only-safe without knowing about scopes.
func requireDevice(auth Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				unauthorized(w, r, "missing or malformed Authorization header: want \"Bearer <token>\"")
				return
			}
			grant, ok := auth.Authenticate(token)
			if !ok {
				unauthorized(w, r, "unknown token")
				return
			}
			if grant.Scope == devices.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
				respondError(w, r, nil, errStatus(http.StatusForbidden,
					"this token is read-only: it may read its device but not %s %s (that needs the device's read-write token)",
					r.Method, r.URL.Path))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, grant)))
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

// authorizedGrant returns the device and scope of the request's token.
func authorizedGrant(ctx context.Context) devices.Grant {
	grant, _ := ctx.Value(grantKey{}).(devices.Grant)
	return grant
}

// authorizedDevice returns the device of the request's token.
func authorizedDevice(ctx context.Context) string {
	return authorizedGrant(ctx).Device
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
