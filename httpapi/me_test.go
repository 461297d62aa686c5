package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
)

func TestMe(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Tokens: map[string]string{"tok-a": "device-a", "tok-b": "device-b"},
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, auth string
		status     int
		device     string
	}{
		{"first token", "Bearer tok-a", http.StatusOK, "device-a"},
		{"second token", "Bearer tok-b", http.StatusOK, "device-b"},
		{"unknown token", "Bearer nope", http.StatusUnauthorized, ""},
		{"no header", "", http.StatusUnauthorized, ""},
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
			is.Equal(body, map[string]any{"device_id": tc.device})
		})
	}
}
