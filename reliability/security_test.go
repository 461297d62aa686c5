package reliability_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/internal/testserve"
	"github.com/sungrow/sungrow/loadtest"
)

func secret(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// send makes one request and returns its status and body.
func send(t *testing.T, method, url, authorization string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestTokensNeverInLogs(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	good, other, wrong := secret("good-"), secret("other-"), secret("wrong-")
	srv := testserve.StartServe(t, map[string]string{
		"DATABASE_URL": d.URL, "DEVICE_TOKENS": good + ":inverter-a," + other + ":inverter-b", "LOG_LEVEL": "debug",
	})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rt := srv.Base + "/v1/realtime?device_id=inverter-a"

	status, _ := send(t, http.MethodPost, srv.Base+"/v1/ingest", "Bearer "+good, batchBody(t, "inverter-a", start, 3))
	is.Equal(status, http.StatusOK)
	status, _ = send(t, http.MethodGet, rt, "Bearer "+good, nil)
	is.Equal(status, http.StatusOK)
	status, _ = send(t, http.MethodGet, rt, "Bearer "+other, nil) // the other device's token
	is.Equal(status, http.StatusForbidden)
	status, _ = send(t, http.MethodPost, srv.Base+"/v1/ingest", "Bearer "+other, batchBody(t, "inverter-a", start, 1))
	is.Equal(status, http.StatusForbidden)
	status, _ = send(t, http.MethodGet, rt, "Bearer "+wrong, nil)
	is.Equal(status, http.StatusUnauthorized)
	status, _ = send(t, http.MethodGet, rt, "Basic "+good, nil) // right token, wrong scheme
	is.Equal(status, http.StatusUnauthorized)
	status, _ = send(t, http.MethodGet, rt+"&token="+good, "Bearer "+wrong, nil) // a token in the query
	is.Equal(status, http.StatusUnauthorized)
	status, _ = send(t, http.MethodPost, srv.Base+"/v1/ingest", "Bearer "+good, []byte(`{"samples":[{"device_id":"`+good+`"}]}`))
	is.Equal(status, http.StatusForbidden) // a token pasted as a device id
	status, _ = send(t, http.MethodPost, srv.Base+"/v1/ingest", "Bearer "+good, []byte(`{"samples":[`+good))
	is.Equal(status, http.StatusUnprocessableEntity) // a token inside malformed JSON
	status, _ = send(t, http.MethodGet, srv.Base+"/v1/series?device_id=inverter-a&frame="+good, "Bearer "+good, nil)
	is.Equal(status, http.StatusUnprocessableEntity)

	logs := srv.Logs.String()
	is.True(strings.Count(logs, `"msg":"request"`) >= 10) // the requests were logged...
	for name, tok := range map[string]string{"good": good, "other": other, "wrong": wrong} {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[len(tok)-16:]) {
			t.Errorf("the %s token (or its end) is in the logs", name)
		}
	}
}

func TestUnauthorizedNeverTellsWhetherADeviceExists(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	tok := secret("tok-")
	srv := testserve.StartServe(t, map[string]string{"DATABASE_URL": d.URL, "DEVICE_TOKENS": tok + ":inverter-a"})
	status, _ := send(t, http.MethodPost, srv.Base+"/v1/ingest", "Bearer "+tok, batchBody(t, "inverter-a", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 1))
	is.Equal(status, http.StatusOK) // inverter-a exists and has data

	type answer struct {
		status int
		body   string
	}
	ask := func(method, path, device string, auth string) answer {
		var body []byte
		if method == http.MethodPost {
			body = batchBody(t, device, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), 1)
		}
		s, b := send(t, method, srv.Base+path+"?device_id="+device+"&frame=day", auth, body)
		return answer{s, b}
	}
	for _, auth := range []string{"Bearer " + secret("unknown-"), "Bearer " + tok[:len(tok)-1], "", "Bearer"} {
		for _, ep := range []struct{ method, path string }{
			{http.MethodGet, "/v1/realtime"}, {http.MethodGet, "/v1/series"}, {http.MethodPost, "/v1/ingest"}, {http.MethodGet, "/v1/me"},
		} {
			known := ask(ep.method, ep.path, "inverter-a", auth)
			unknown := ask(ep.method, ep.path, "no-such-device", auth)
			is.Equal(known.status, http.StatusUnauthorized)
			is.Equal(known, unknown) // same status, same body, whatever device is asked
			is.True(!strings.Contains(known.body, "inverter-a"))
		}
	}
}

// endless is a body that never ends: the start of an ingest object, then one JSON
// string that goes on for ever (within a bound of limit bytes, so the test ends even if
// the server never stops reading). sent counts what the server took.
type endless struct {
	head  []byte
	sent  atomic.Int64 // read by the test while the transport may still be sending
	limit int64
}

func (e *endless) Read(p []byte) (int, error) {
	sent := e.sent.Load()
	if sent >= e.limit {
		return 0, io.EOF
	}
	n := 0
	if sent < int64(len(e.head)) {
		n = copy(p, e.head[sent:])
	}
	for ; n < len(p); n++ {
		p[n] = 'a'
	}
	e.sent.Add(int64(n))
	return n, nil
}

func TestBodyLimitHoldsWhileStreaming(t *testing.T) {
	is := is.New(t)
	d := testenv.New(t, testenv.Postgres)
	dev := loadtest.GeneratedDevices(1, "stream")[0]
	const limit = 1 << 20
	srv := testserve.StartServe(t, map[string]string{
		"DATABASE_URL": d.URL, "DEVICE_TOKENS": loadtest.DeviceTokens([]loadtest.Device{dev}), "MAX_REQUEST_BYTES": "1048576",
	})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	body := &endless{head: []byte(`{"samples":[{"device_id":"` + dev.ID + `","pad":"`), limit: 1 << 30}
	// No Content-Length: the body is chunked and the server learns its size only by
	// reading it.
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.Base+"/v1/ingest", io.NopCloser(body))
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+dev.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	runtime.ReadMemStats(&after)

	is.Equal(res.StatusCode, http.StatusRequestEntityTooLarge)
	is.True(strings.Contains(string(answer), "limit"))
	t.Logf("the client got %d bytes out of 1 GiB in before the 413; %d MiB allocated meanwhile",
		body.sent.Load(), (after.TotalAlloc-before.TotalAlloc)>>20)
	// The server stopped reading near the limit (socket buffers hold a few MiB more)...
	is.True(body.sent.Load() < 64<<20)
	// ...and what it allocated is of the order of the limit, not of the body offered.
	is.True(after.TotalAlloc-before.TotalAlloc < 32<<20)

	// The server is fine afterwards.
	status, _ := send(t, http.MethodGet, srv.Base+"/health", "", nil)
	is.Equal(status, http.StatusOK)
}
