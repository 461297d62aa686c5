package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/stream"
	"github.com/sungrow/sungrow/tariff"
	"github.com/sungrow/sungrow/telemetry"
)

// TestOpenAPIDocumentMatchesResponses sends a request for every documented success and
// error response to a real server and checks each answer against /openapi.json, so
// the document cannot drift from what the server does.
func TestOpenAPIDocumentMatchesResponses(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := testenv.New(t, testenv.Postgres)
	hub := runHub(t, stream.Options{Source: httpapi.NewRealtimeSource(telemetry.NewStore(d.Pool))})
	full := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Stream = runHub(t, stream.Options{Source: httpapi.NewRealtimeSource(telemetry.NewStore(d.Pool)), MaxClients: 1})
	})
	testenv.OpenStream(t, full.URL, token, device, "") // the one stream full takes
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Stream = hub
		deps.Stored = []httpapi.StoredListener{hub}
		deps.Series = series.NewRaw(d.Pool, time.UTC)
		deps.Cache = cache.NewMemory(cache.Options{TTL: 5 * time.Second, Logger: deps.Logger})
		deps.Ready = []httpapi.ReadyCheck{{Name: "database", Check: d.Pool.Ping}}
		deps.Devices = grants{
			token:             {Device: device, Scope: devices.ReadWrite},
			"other-token":     {Device: "inverter-02", Scope: devices.ReadWrite},
			"read-only-token": {Device: device, Scope: devices.ReadOnly},
		}
	})
	unready := newServer(t, d.Pool, func(deps *httpapi.Deps) {
		deps.Ready = []httpapi.ReadyCheck{{Name: "redis", Check: func(context.Context) error { return io.ErrUnexpectedEOF }}}
	})

	// A price, so the series answers carry money and a currency.
	_, _, err := tariff.NewStore(d.Pool).Set(ctx, tariff.Tariff{DeviceID: tariff.AllDevices, Kind: tariff.Fixed,
		ValidFrom: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Import: "0.30", Export: "0.08", Currency: "EUR"})
	is.NoErr(err)

	res, err := http.Get(srv.URL + "/openapi.json")
	is.NoErr(err)
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	is.NoErr(err)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	is.NoErr(err)
	is.NoErr(doc.Validate(ctx)) // the document itself is valid OpenAPI 3.1
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
	is.Equal(doc.Servers[0].URL, "/") // relative: wherever the document was fetched from
	doc.Servers = openapi3.Servers{{URL: "http://localhost"}}
	router, err := legacy.NewRouter(doc)
	is.NoErr(err)

	ingest := func(body string) request {
		return request{method: "POST", path: "/v1/ingest", token: token, body: body}
	}
	sample := `{"device_id":"inverter-01","ts":"2026-02-15T08:00:00Z","pv_power_w":1200.5,"battery_power_w":-300,"battery_soc_pct":64,"load_power_w":900,"export_power_w":0.5}`
	requests := []struct {
		req    request
		status int
	}{
		{request{method: "GET", path: "/health"}, 200},
		{request{method: "POST", path: "/health"}, 405},
		{request{method: "DELETE", path: "/ready"}, 405},
		{request{method: "POST", path: "/metrics"}, 405},
		{request{method: "PUT", path: "/openapi.json"}, 405},
		{request{method: "POST", path: "/"}, 405},
		{request{method: "GET", path: "/ready"}, 200},
		{request{server: unready.URL, method: "GET", path: "/ready"}, 503},
		{request{method: "GET", path: "/metrics"}, 200},
		{request{method: "GET", path: "/openapi.json"}, 200},
		{request{method: "GET", path: "/"}, 200},
		{request{method: "GET", path: "/v1/me", token: token}, 200},
		{request{method: "GET", path: "/v1/me"}, 401},
		{request{method: "GET", path: "/v1/me", token: "read-only-token"}, 200},
		{request{method: "POST", path: "/v1/ingest", token: "read-only-token", body: `{"samples":[` + sample + `]}`}, 403},
		{request{method: "GET", path: "/v1/realtime?device_id=" + device, token: token}, 404},
		{ingest(`{"samples":[` + sample + `]}`), 200},
		{ingest(`{"samples":[` + sample + `]}`), 200}, // again: inserted 0
		{request{method: "POST", path: "/v1/ingest", body: `{"samples":[]}`}, 401},
		{request{method: "POST", path: "/v1/ingest", token: "other-token", body: `{"samples":[` + sample + `]}`}, 403},
		{ingest(`{"samples":[` + strings.Repeat(sample+",", 1000) + sample + `]}`), 413},
		{request{method: "POST", path: "/v1/ingest", token: token, body: `{}`, contentType: "text/plain"}, 415},
		{ingest(`{"samples":[{"ts":"yesterday"}]}`), 422},
		{request{method: "GET", path: "/v1/quarantine?device_id=" + device, token: token}, 200},                           // empty
		{ingest(`{"samples":[` + strings.Replace(sample, "2026-02-15T08:00:00Z", "1970-01-01T00:00:10Z", 1) + `]}`), 200}, // set aside
		{request{method: "GET", path: "/v1/quarantine?device_id=" + device, token: token}, 200},
		{request{method: "GET", path: "/v1/quarantine?device_id=inverter-02", token: token}, 403},
		{request{method: "GET", path: "/v1/quarantine", token: token}, 422},
		{request{method: "GET", path: "/v1/quarantine?device_id=" + device}, 401},
		{request{method: "GET", path: "/v1/realtime?device_id=" + device, token: token}, 200},
		{request{method: "GET", path: "/v1/realtime?device_id=inverter-02", token: token}, 403},
		{request{method: "GET", path: "/v1/realtime", token: token}, 422},
		{request{method: "GET", path: "/v1/realtime?device_id=" + device}, 401},
		{request{method: "GET", path: "/v1/stream?device_id=" + device, token: token}, 200},
		{request{method: "GET", path: "/v1/stream?device_id=inverter-02", token: token}, 403},
		{request{method: "GET", path: "/v1/stream", token: token}, 422},
		{request{method: "GET", path: "/v1/stream?device_id=" + device}, 401},
		{request{server: full.URL, method: "GET", path: "/v1/stream?device_id=" + device, token: token}, 503},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=day&date=2026-02-15", token: token}, 200},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=all", token: token}, 200},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=day&date=2026-02-15&format=csv", token: token}, 200},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=day&format=xml", token: token}, 422},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=fortnight", token: token}, 422},
		{request{method: "GET", path: "/v1/series?device_id=inverter-02&frame=day", token: token}, 403},
		{request{method: "GET", path: "/v1/series?device_id=" + device + "&frame=day"}, 401},
	}

	covered := map[string]bool{} // "METHOD path status"
	for _, tt := range requests {
		name := tt.req.method + " " + tt.req.path
		base := srv.URL
		if tt.req.server != "" {
			base = tt.req.server
		}
		httpReq, err := http.NewRequest(tt.req.method, base+tt.req.path, strings.NewReader(tt.req.body))
		is.NoErr(err)
		if tt.req.body != "" {
			ct := tt.req.contentType
			if ct == "" {
				ct = "application/json"
			}
			httpReq.Header.Set("Content-Type", ct)
		}
		if tt.req.token != "" {
			httpReq.Header.Set("Authorization", "Bearer "+tt.req.token)
		}
		res, err := http.DefaultClient.Do(httpReq)
		is.NoErr(err)
		var body []byte
		if res.Header.Get("Content-Type") == "text/event-stream" {
			body = firstEvent(t, res.Body) // the stream goes on: its start is the answer
		} else {
			body, err = io.ReadAll(res.Body)
			is.NoErr(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Fatalf("%s: status %d, want %d: %s", name, res.StatusCode, tt.status, body)
		}

		// Match the route with a copy of the request that points at the document's server.
		// A 405 is the answer of the path to a method it does not have: the document
		// lists it under the path's GET.
		docMethod := tt.req.method
		if tt.status == http.StatusMethodNotAllowed {
			docMethod = http.MethodGet
		}
		docReq, _ := http.NewRequest(docMethod, "http://localhost"+tt.req.path, nil)
		route, params, err := router.FindRoute(docReq)
		if err != nil {
			t.Fatalf("%s: not in the document: %v", name, err)
		}
		input := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request: docReq, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			},
			Status: res.StatusCode,
			Header: res.Header,
			Body:   io.NopCloser(bytes.NewReader(body)),
			Options: &openapi3filter.Options{
				IncludeResponseStatus: true, // a status the document does not list is an error
			},
		}
		if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
			t.Errorf("%s → %d does not match the document: %v\nbody: %.300s", name, res.StatusCode, err, body)
		}
		covered[route.Method+" "+route.Path] = true
	}

	// Every documented operation was exercised above.
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !covered[method+" "+path] {
				t.Errorf("%s %s is documented but not checked", method, path)
			}
		}
	}
}

// runHub runs a stream hub until the test ends.
func runHub(t *testing.T, o stream.Options) *stream.Hub {
	hub := stream.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { hub.EndStreams(); cancel(); <-done })
	return hub
}

// firstEvent reads a text/event-stream up to the end of its first sample event.
func firstEvent(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var out bytes.Buffer
	br := bufio.NewReader(r)
	sample := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before its first event: %v (%q)", err, out.String())
		}
		out.WriteString(line)
		sample = sample || line == "event: sample\n"
		if sample && line == "\n" {
			return out.Bytes()
		}
	}
}

type request struct {
	server, method, path, token, body, contentType string
}

// TestOpenAPIPassesRedoclyLint runs @redocly/cli's recommended rules over the document,
// as API tooling that nobody here wrote reads it. scripts/services installs it (pinned
// by tools/openapi-lint/package-lock.json).
func TestOpenAPIPassesRedoclyLint(t *testing.T) {
	redocly, err := filepath.Abs("../tools/openapi-lint/node_modules/.bin/redocly")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(redocly); err != nil {
		t.Fatalf("%v: run scripts/services, which installs @redocly/cli", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lint := exec.CommandContext(ctx, redocly, "lint", "--format=stylish", "openapi.json")
	// No telemetry and no update check: the test sends nothing anywhere.
	lint.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := lint.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("redocly lint: %v", err)
	}
}
