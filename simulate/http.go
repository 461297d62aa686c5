package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// MaxHTTPBatch is the most samples the API takes in one request by default
// (MAX_SAMPLES_PER_REQUEST).
const MaxHTTPBatch = 1000

// HTTPSink posts samples to POST /v1/ingest the way an edge daemon should: in batches,
// with a bearer token, retrying server errors, network errors and 429 with exponential
// backoff, and never skipping a batch. Any other 4xx is a mistake retrying cannot fix,
// so it stops with the server's explanation.
type HTTPSink struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8080.
	BaseURL string
	Token   string
	Client  *http.Client
	Logger  *slog.Logger
	// MaxAttempts bounds the tries of one batch before Insert gives up with an error.
	MaxAttempts int
	// BaseDelay is the wait after the first failure; it doubles up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// BatchSize splits larger Insert calls; at most the server's limit.
	BatchSize int
}

// NewHTTPSink returns a sink with production defaults: 10 attempts per batch, backoff
// from 0.5 s to 30 s, batches of 1000.
func NewHTTPSink(baseURL, token string, logger *slog.Logger) *HTTPSink {
	return &HTTPSink{
		BaseURL:     strings.TrimRight(baseURL, "/"),
		Token:       token,
		Client:      &http.Client{Timeout: 60 * time.Second},
		Logger:      logger,
		MaxAttempts: 10,
		BaseDelay:   500 * time.Millisecond,
		MaxDelay:    30 * time.Second,
		BatchSize:   MaxHTTPBatch,
	}
}

// Insert posts the samples in batches and returns how many the server stored as new.
func (h *HTTPSink) Insert(ctx context.Context, deviceID string, samples []telemetry.Sample) (int64, error) {
	size := h.BatchSize
	if size < 1 || size > MaxHTTPBatch {
		size = MaxHTTPBatch
	}
	var total int64
	for len(samples) > 0 {
		n := min(size, len(samples))
		inserted, err := h.post(ctx, samples[:n])
		if err != nil {
			return total, err
		}
		total += inserted
		samples = samples[n:]
	}
	return total, nil
}

// permanentError is an answer that retrying cannot change.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// post sends one batch until the server accepts it, refuses it for good, or the
// attempts run out.
func (h *HTTPSink) post(ctx context.Context, batch []telemetry.Sample) (int64, error) {
	body, err := json.Marshal(struct {
		Samples []telemetry.Sample `json:"samples"`
	}{batch})
	if err != nil {
		return 0, fmt.Errorf("encode batch: %w", err)
	}
	attempts := max(h.MaxAttempts, 1)
	delay := h.BaseDelay
	for attempt := 1; ; attempt++ {
		inserted, retryAfter, err := h.postOnce(ctx, body)
		if err == nil {
			return inserted, nil
		}
		var permanent permanentError
		if errors.As(err, &permanent) || ctx.Err() != nil {
			return 0, err
		}
		if attempt >= attempts {
			return 0, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		// Full jitter keeps many clients that failed together from retrying together;
		// the server's Retry-After, when it gives one, is a floor.
		wait := time.Duration(rand.Int64N(int64(delay)/2+1)) + delay/2
		wait = max(wait, retryAfter)
		if h.MaxDelay > 0 {
			wait = min(wait, h.MaxDelay)
		}
		if h.Logger != nil {
			h.Logger.Warn("ingest failed, retrying", "attempt", attempt, "wait", wait.String(), "err", err.Error())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("waiting to retry: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		if h.MaxDelay <= 0 || delay < h.MaxDelay {
			delay *= 2
		}
	}
}

// postOnce sends the batch once. A retryable failure comes back as a plain error with
// the server's Retry-After (0 if none); one that is not is a permanentError.
func (h *HTTPSink) postOnce(ctx context.Context, body []byte) (int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.BaseURL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, 0, permanentError{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.Token)
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("POST /v1/ingest: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, 0, fmt.Errorf("POST /v1/ingest: read response: %w", err)
	}

	switch {
	case res.StatusCode == http.StatusOK:
		var out struct {
			Inserted *int64 `json:"inserted"`
		}
		if err := json.Unmarshal(data, &out); err != nil || out.Inserted == nil {
			return 0, 0, permanentError{fmt.Errorf("POST /v1/ingest: 200 without {\"inserted\": N}: %.200q", data)}
		}
		return *out.Inserted, 0, nil
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return 0, retryAfter(res.Header.Get("Retry-After")), fmt.Errorf("POST /v1/ingest: %s%s", res.Status, detail(data))
	default:
		return 0, 0, permanentError{fmt.Errorf("POST /v1/ingest: %s%s%s", res.Status, detail(data), hint(res.StatusCode))}
	}
}

// detail is the problem document's explanation, or the start of whatever came back.
func detail(body []byte) string {
	var problem struct {
		Detail string            `json:"detail"`
		Errors map[string]string `json:"errors"`
	}
	if json.Unmarshal(body, &problem) == nil && problem.Detail != "" {
		s := ": " + problem.Detail
		for field, msg := range problem.Errors {
			s += fmt.Sprintf("; %s: %s", field, msg)
			break // one example is enough; a whole batch of the same mistake is noise
		}
		return s
	}
	if b := strings.TrimSpace(string(body)); b != "" {
		return fmt.Sprintf(": %.200s", b)
	}
	return ""
}

func hint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return " (check --token: it must be a token of the device, from `sungrow device add`/`token add` or the server's DEVICE_TOKENS, and not revoked)"
	case http.StatusForbidden:
		return " (the token speaks for another device than --device)"
	case http.StatusRequestEntityTooLarge:
		return " (the server's MAX_SAMPLES_PER_REQUEST or MAX_REQUEST_BYTES is below this batch)"
	case http.StatusNotFound:
		return " (is --via the sungrow server's base URL?)"
	}
	return ""
}

// retryAfter reads a Retry-After of delay-seconds; the HTTP-date form is rare enough
// from an API to fall back on the backoff.
func retryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
