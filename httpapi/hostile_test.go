package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/internal/testenv"
)

// sampleWith is a valid sample of the test device with one field's raw JSON replaced
// (or, with an empty field, the raw text appended after the last field).
func sampleWith(field, raw string) string {
	s := sampleJSON(0)
	b, _ := json.Marshal(s)
	obj := strings.TrimSuffix(string(b), "}")
	if field == "" {
		return obj + raw + "}"
	}
	delete(s, field)
	b, _ = json.Marshal(s)
	return strings.TrimSuffix(string(b), "}") + `,"` + field + `":` + raw + "}"
}

func TestHostileIngestBodiesAreRefusedWithoutHarm(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool)
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"deeply nested field value", `{"samples":[` + sampleWith("pv_power_w", deep) + `]}`, 422},
		{"deeply nested unclosed", `{"samples":` + strings.Repeat("[", 200000), 422},
		{"deeply nested objects", `{"samples":[` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000) + `]}`, 422},
		{"nested unknown field is skipped", `{"x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `,"samples":[` + sampleWith("", "") + `]}`, 200},
		{"deeply nested unknown field", `{"x":` + deep + `,"samples":[` + sampleWith("", "") + `]}`, 422},
		{"huge number", `{"samples":[` + sampleWith("pv_power_w", "1e400") + `]}`, 422},
		{"thousand-digit number", `{"samples":[` + sampleWith("load_power_w", "9"+strings.Repeat("9", 1000)) + `]}`, 422},
		{"huge negative number", `{"samples":[` + sampleWith("export_power_w", "-1.8e308") + `]}`, 422},
		{"huge sample_count", `{"samples":[` + sampleWith("sample_count", "1e20") + `]}`, 422},
		{"number as string", `{"samples":[` + sampleWith("pv_power_w", `"1"`) + `]}`, 422},
		{"NaN literal", `{"samples":[` + sampleWith("pv_power_w", "NaN") + `]}`, 422},
		{"duplicate field", `{"samples":[` + sampleWith("", `,"pv_power_w":2`) + `]}`, 422},
		{"duplicate samples key", `{"samples":[],"samples":[` + sampleWith("", "") + `]}`, 422},
		{"invalid UTF-8", "{\"samples\":[" + sampleWith("device_id", "\"inverter-01\xff\"") + "]}", 422},
		{"NUL in device_id", `{"samples":[` + sampleWith("device_id", `"inverter-01\u0000"`) + `]}`, 403},
		{"device_id of another", `{"samples":[` + sampleWith("device_id", `"inverter-01' OR '1'='1"`) + `]}`, 403},
		{"trailing garbage", `{"samples":[` + sampleWith("", "") + `]}; DROP TABLE sungrow_samples`, 422},
		{"empty body", ``, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := post(t, srv.URL, token, tt.body)
			is.Equal(res.status, tt.want)
			if tt.want != 200 {
				is.Equal(res.header.Get("Content-Type"), "application/problem+json")
			}
		})
	}
	is.New(t).Equal(countRows(t, d.Pool), 1) // only the one valid body; the table is still there
}

func TestHostileDeviceIDsAreStoredAndReadBackVerbatim(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	ids := []string{
		`inv'"; DROP TABLE sungrow_samples; --`,
		`Robert'); DELETE FROM sungrow_samples WHERE ('1'='1`,
		`$1; SELECT pg_sleep(10)`,
		`wechselrichter-ü-☀️-😀-逆变器`,
		`back\slash %_* <script>alert(1)</script>`,
		"tab\tand\u00a0nbsp",
	}
	tokens := map[string]string{}
	for i, id := range ids {
		tokens[fmt.Sprintf("tok-%d", i)] = id
	}
	srv := newServer(t, d.Pool, func(deps *httpapi.Deps) { deps.Tokens = tokens })
	for i, id := range ids {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			is := is.New(t)
			s := sampleJSON(i)
			s["device_id"] = id
			res := post(t, srv.URL, fmt.Sprintf("tok-%d", i), map[string]any{"samples": []any{s}})
			is.Equal(res.status, http.StatusOK)
			is.Equal(res.body["inserted"], 1.0)

			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/realtime?device_id="+url.QueryEscape(id), nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", i))
			got := do(t, req)
			is.Equal(got.status, http.StatusOK)
			is.Equal(got.body["device_id"], id) // byte for byte
		})
	}
	is.New(t).Equal(countRows(t, d.Pool), len(ids)) // each stored once, nothing dropped or deleted
}

func TestVeryLongTokensAndHeaders(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool)
	get := func(header, value string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/realtime?device_id="+device, nil)
		req.Header.Set(header, value)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	t.Run("100 kB token", func(t *testing.T) {
		is := is.New(t)
		long := strings.Repeat("Z", 100<<10)
		res, body := get("Authorization", "Bearer "+long)
		is.Equal(res.StatusCode, http.StatusUnauthorized)
		is.True(!strings.Contains(body, "ZZZZ")) // never echoed
	})
	t.Run("valid token with 100 kB of padding", func(t *testing.T) {
		is := is.New(t)
		res, _ := get("Authorization", "Bearer "+token+strings.Repeat(" x", 50<<10))
		is.Equal(res.StatusCode, http.StatusUnauthorized) // not a prefix match
	})
	t.Run("2 MB header", func(t *testing.T) {
		is := is.New(t)
		res, _ := get("X-Padding", strings.Repeat("p", 2<<20))
		is.Equal(res.StatusCode, http.StatusRequestHeaderFieldsTooLarge) // cut by the server before any handler
	})
	t.Run("10 kB request id", func(t *testing.T) {
		is := is.New(t)
		res, _ := get("X-Request-ID", strings.Repeat("r", 10<<10))
		is.True(len(res.Header.Get("X-Request-ID")) <= 64) // replaced, not echoed
	})
}

// rawRequest sends request bytes as they are, past any client's header checks, and
// reads the answer.
func rawRequest(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestHeaderInjectionAttempts(t *testing.T) {
	d := testenv.New(t, testenv.Postgres)
	srv := newServer(t, d.Pool)
	addr := strings.TrimPrefix(srv.URL, "http://")
	head := "GET /v1/realtime?device_id=" + device + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\nConnection: close\r\n"
	tests := []struct {
		name    string
		request string
		// wantID is the X-Request-ID the answer must carry; empty: a fresh one.
		wantID string
	}{
		{"sane id echoed", head + "X-Request-ID: abc-123_x.y\r\n\r\n", "abc-123_x.y"},
		{"CRLF splits into a second header", head + "X-Request-ID: abc\r\nSet-Cookie: pwned=1\r\n\r\n", "abc"},
		{"bare CR inside the value", head + "X-Request-ID: abc\rSet-Cookie: pwned=1\r\n\r\n", ""},
		{"bare LF inside the value", head + "X-Request-ID: abc\nSet-Cookie: pwned=1\r\n\r\n", "abc"},
		{"percent-encoded CRLF", head + "X-Request-ID: abc%0d%0aSet-Cookie:%20pwned=1\r\n\r\n", ""},
		{"unicode line separator", head + "X-Request-ID: abc\u2028Set-Cookie: pwned=1\r\n\r\n", ""},
		{"space and colon", head + "X-Request-ID: abc Set-Cookie: pwned=1\r\n\r\n", ""},
		{"CRLF in the query", "GET /v1/realtime?device_id=x%0d%0aSet-Cookie:%20pwned=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\nConnection: close\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := rawRequest(t, addr, tt.request)
			is.Equal(res.Header.Values("Set-Cookie"), []string(nil)) // nothing injected into the answer
			for name, values := range res.Header {
				for _, v := range values {
					is.True(!strings.ContainsAny(v, "\r\n")) // no header carries a line break
					is.True(!strings.Contains(strings.ToLower(name+v), "pwned"))
				}
			}
			if res.StatusCode == http.StatusBadRequest {
				return // refused by net/http before sungrow saw it: fine too
			}
			id := res.Header.Get("X-Request-ID")
			if tt.wantID != "" {
				is.Equal(id, tt.wantID)
			} else {
				is.True(len(id) == 16 && !strings.Contains(id, "abc")) // a fresh id, not the offered one
			}
		})
	}
}
