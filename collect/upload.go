package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// Uploader posts spooled readings to POST /v1/ingest and says which of them the
// spool may forget: the ones the server took (200) and single readings it refused for
// good (413/422). Everything else keeps them.
type Uploader struct {
	BaseURL string
	Token   string
	Client  *http.Client
	Logger  *slog.Logger
	// Counted is called with each answer's status ("200", "503", "network"…).
	Counted func(status string)
}

// NewUploader returns an uploader for the server at baseURL.
func NewUploader(baseURL, token string, timeout time.Duration, logger *slog.Logger) *Uploader {
	return &Uploader{BaseURL: strings.TrimRight(baseURL, "/"), Token: token,
		Client: &http.Client{Timeout: timeout}, Logger: logger, Counted: func(string) {}}
}

// RetryError is an answer worth retrying: a network error, 429 or a server error.
// After is the server's Retry-After, 0 when it gave none.
type RetryError struct {
	Status string
	After  time.Duration
	Err    error
}

func (e *RetryError) Error() string { return fmt.Sprintf("upload: %s: %v", e.Status, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// RefusedError is 401 or 403: the token is wrong, revoked, or for another device.
// Readings stay in the spool until a right token is given.
type RefusedError struct {
	Status int
	Detail string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the server refused the token: %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// Me asks the server which device the token belongs to.
func (u *Uploader) Me(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.BaseURL+"/v1/me", nil)
	if err != nil {
		return "", fmt.Errorf("GET /v1/me: %w", err)
	}
	var me struct {
		DeviceID string `json:"device_id"`
	}
	status, detail, err := u.do(req, &me)
	if err != nil {
		return "", &RetryError{Status: "network", Err: fmt.Errorf("GET /v1/me: %w", err)}
	}
	switch {
	case status == http.StatusOK && me.DeviceID != "":
		return me.DeviceID, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "", &RefusedError{Status: status, Detail: detail}
	}
	return "", &RetryError{Status: strconv.Itoa(status), Err: fmt.Errorf("GET /v1/me: %d %s", status, detail)}
}

// Deliver posts rs as one batch; on 413 or 422 it splits the batch in halves until
// what the server accepts is delivered and a single refused reading is dropped, with
// the server's reason in the log. It returns the readings the spool may remove and,
// when it stopped early, a *RetryError or *RefusedError.
func (u *Uploader) Deliver(ctx context.Context, device string, rs []SpooledReading) ([]SpooledReading, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	samples := make([]telemetry.Sample, len(rs))
	for i, r := range rs {
		samples[i] = r.Sample
		if samples[i].DeviceID == "" {
			samples[i].DeviceID = device
		}
	}
	status, detail, retryAfter, err := u.post(ctx, samples)
	if err != nil {
		u.Counted("network")
		return nil, &RetryError{Status: "network", Err: err}
	}
	u.Counted(strconv.Itoa(status))
	switch {
	case status == http.StatusOK:
		return rs, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &RefusedError{Status: status, Detail: detail}
	case status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity:
		if len(rs) == 1 {
			u.Logger.Warn("the server refused a reading; dropping it",
				"ts", rs[0].Sample.TS, "status", status, "reason", detail)
			return rs, nil
		}
		half := len(rs) / 2
		done, err := u.Deliver(ctx, device, rs[:half])
		if err != nil {
			return done, err
		}
		rest, err := u.Deliver(ctx, device, rs[half:])
		return append(done, rest...), err
	}
	// 429, 5xx, and anything unexpected (a proxy's 404, a 400): retrying is safe
	// because ingest is idempotent, and dropping readings on an answer we do not
	// understand would lose data.
	return nil, &RetryError{Status: strconv.Itoa(status), After: retryAfter, Err: fmt.Errorf("%d %s", status, detail)}
}

func (u *Uploader) post(ctx context.Context, samples []telemetry.Sample) (int, string, time.Duration, error) {
	body, err := json.Marshal(struct {
		Samples []telemetry.Sample `json:"samples"`
	}{samples})
	if err != nil {
		return 0, "", 0, fmt.Errorf("encode batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.BaseURL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, fmt.Errorf("POST /v1/ingest: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	var resp *http.Response
	status, detail, err := u.doResp(req, nil, &resp)
	if err != nil {
		return 0, "", 0, fmt.Errorf("POST /v1/ingest: %w", err)
	}
	return status, detail, retryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

func (u *Uploader) do(req *http.Request, into any) (int, string, error) {
	var resp *http.Response
	return u.doResp(req, into, &resp)
}

// doResp sends req with the token and reads at most 64 KiB of the answer: into on
// 200, else the problem's detail (never the whole body, which could be anything).
func (u *Uploader) doResp(req *http.Request, into any, respOut **http.Response) (int, string, error) {
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := u.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	*respOut = resp
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if into != nil {
			if err := json.Unmarshal(body, into); err != nil {
				return 0, "", fmt.Errorf("decode answer: %w", err)
			}
		}
		return resp.StatusCode, "", nil
	}
	var problem struct {
		Detail string `json:"detail"`
	}
	detail := http.StatusText(resp.StatusCode)
	if json.Unmarshal(body, &problem) == nil && problem.Detail != "" {
		detail = problem.Detail
	}
	return resp.StatusCode, truncate(detail, 500), nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
