package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Delivery timing: a receiver has 10 s to answer; a failure is retried after 1 s,
// doubling up to 5 min, for 24 h after the notification was queued.
const (
	AnswerTimeout = 10 * time.Second
	firstRetry    = time.Second
	maxRetry      = 5 * time.Minute
	RetryFor      = 24 * time.Hour
	// claimFor is how long a delivery stays with the instance sending it: past the
	// answer timeout with room to record the answer. An instance that dies while
	// sending leaves it to another after this.
	claimFor = AnswerTimeout + 20*time.Second
)

// SignatureHeader carries sha256=<hex HMAC-SHA256 of the body> when the rule has a
// secret.
const SignatureHeader = "X-Sungrow-Signature"

// Sign is the value of SignatureHeader for a body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether a SignatureHeader value signs body with secret, in constant
// time: what a receiver does.
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// backoff is the wait before retry number attempt (1: the first retry).
func backoff(attempt int32) time.Duration {
	d := firstRetry
	for i := int32(1); i < attempt && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

// Answer is what a webhook answered: a status, or why there was none.
type Answer struct {
	Status int    `json:"status"` // 0: no answer
	Error  string `json:"error,omitempty"`
}

// OK reports a 2xx answer.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

func (a Answer) String() string {
	if a.Status == 0 {
		return a.Error
	}
	return fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
}

// post sends one notification body to a webhook. The answer never holds the URL.
func post(ctx context.Context, client *http.Client, url, secret string, body []byte) Answer {
	ctx, cancel := context.WithTimeout(ctx, AnswerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{Error: "the webhook URL cannot be used"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sungrow-alerts")
	if secret != "" {
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	res, err := client.Do(req)
	if err != nil {
		return Answer{Error: describe(err)}
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	return Answer{Status: res.StatusCode}
}

// describe says why a request got no answer in words that hold neither the URL nor
// its host (net/http's errors quote the whole URL, which is a secret).
func describe(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var errno syscall.Errno
	switch {
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("no answer within %s", AnswerTimeout)
	case errors.Is(err, context.Canceled):
		return "cancelled (shutting down)"
	case errors.As(err, &dnsErr):
		return "the webhook's host name does not resolve"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr):
		return "the webhook's TLS certificate is not trusted"
	case errors.As(err, &recordErr):
		return "the webhook does not speak TLS"
	case errors.As(err, &errno):
		return "could not connect: " + errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed without an answer"
	}
	return "the request failed"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Test sends a test notification of a rule to each of its webhooks at once (not
// through the queue) and returns their answers, in the rule's order.
func Test(ctx context.Context, client *http.Client, r Rule, now time.Time) ([]Answer, error) {
	device := r.DeviceID
	body, err := json.Marshal(Notification{AlertID: r.ID, Rule: r.Kind, DeviceID: device, State: StateTest,
		Since: now.UTC(), At: now.UTC(), Summary: fmt.Sprintf("test notification of sungrow alert %d (%s)", r.ID, r.Condition()),
		Details: map[string]any{}}.withText())
	if err != nil {
		return nil, fmt.Errorf("encode test notification: %w", err)
	}
	answers := make([]Answer, len(r.Webhooks))
	for i, w := range r.Webhooks {
		answers[i] = post(ctx, client, w, r.Secret, body)
	}
	return answers, nil
}
