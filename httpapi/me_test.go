package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/httpapi"
)

// grants is an Authenticator of fixed tokens with their scopes.
type grants map[string]devices.Grant

func (g grants) Authenticate(token string) (devices.Grant, bool) {
	grant, ok := g[token]
	return grant, ok
}

func TestMe(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Devices: grants{
			"tok-a":  {Device: "device-a", Scope: devices.ReadWrite},
			"tok-b":  {Device: "device-b", Scope: devices.ReadWrite},
			"tok-ro": {Device: "device-a", Scope: devices.ReadOnly},
		},
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, auth    string
		status        int
		device, scope string
	}{
		{"first token", "Bearer tok-a", http.StatusOK, "device-a", "read-write"},
		{"second token", "Bearer tok-b", http.StatusOK, "device-b", "read-write"},
		{"read-only token", "Bearer tok-ro", http.StatusOK, "device-a", "read-only"},
		{"unknown token", "Bearer nope", http.StatusUnauthorized, "", ""},
		{"no header", "", http.StatusUnauthorized, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/me", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			defer res.Body.Close()
			is.Equal(res.StatusCode, tc.status)
			var body map[string]any
			is.NoErr(json.NewDecoder(res.Body).Decode(&body))
			if tc.status != http.StatusOK {
				is.Equal(res.Header.Get("WWW-Authenticate"), `Bearer realm="sungrow"`)
				is.True(body["detail"] != "")
				return
			}
			is.Equal(body, map[string]any{"device_id": tc.device, "scope": tc.scope})
		})
	}
}

// TestReadOnlyTokenMayNotWrite: the scope is decided in the authentication middleware,
// before the handler (whose store here would fail anything that reached it), and the
// refusal names the cause.
func TestReadOnlyTokenMayNotWrite(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Devices: grants{"tok-ro": {Device: "device-a", Scope: devices.ReadOnly}},
	}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ingest", strings.NewReader(
		`{"samples":[{"device_id":"device-a","ts":"2026-01-01T00:00:00Z","pv_power_w":1,"battery_power_w":0,"battery_soc_pct":50,"load_power_w":1,"export_power_w":0}]}`))
	req.Header.Set("Authorization", "Bearer tok-ro")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	defer res.Body.Close()
	is.Equal(res.StatusCode, http.StatusForbidden)
	var body struct{ Detail string }
	is.NoErr(json.NewDecoder(res.Body).Decode(&body))
	is.True(strings.Contains(body.Detail, "read-only"))
	is.True(strings.Contains(body.Detail, "POST /v1/ingest"))
}
