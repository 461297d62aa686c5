package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/sungrow/sungrow/metrics"
)

type requestIDKey struct{}

// requestID returns the id of the request, as set by observe.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe gives every request an id (the caller's X-Request-ID when it is sane, so a
// proxy's id follows the request), echoes it in X-Request-ID, counts and times the
// request by route pattern, and writes one access-log line: never a header, never a
// body, so tokens stay out of the logs.
func observe(logger *slog.Logger, m *metrics.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}

		m.InFlight.Inc()
		func() {
			defer m.InFlight.Dec()
			defer recoverPanic(logger, rec, r)
			next.ServeHTTP(rec, r)
		}()

		elapsed := time.Since(start)
		route := r.Pattern // set by the ServeMux on this very request
		if route == "" {
			route = "unmatched"
		}
		m.Requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.RequestDuration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// recoverPanic turns a handler's panic into a logged 500, so one bad request costs
// neither the connection's other requests nor the access-log line. http.ErrAbortHandler
// is net/http's way to drop a connection on purpose and is passed on.
func recoverPanic(logger *slog.Logger, rec *statusRecorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	logger.ErrorContext(r.Context(), "handler panicked", "request_id", requestID(r.Context()),
		"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if !rec.wroteHeader {
		rec.Header().Set("Content-Type", "application/problem+json")
		encodeStatus(rec, http.StatusInternalServerError, problem{Type: "about:blank",
			Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
			Detail: "internal error"})
	}
}

// problemsForUnrouted answers the requests no route takes (404, or 405 for a known
// path with another method) with a problem document, like every other error; the
// ServeMux itself would answer in plain text.
func problemsForUnrouted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&unroutedWriter{ResponseWriter: w, r: r}, r)
	})
}

// unroutedWriter rewrites the ServeMux's own 404 and 405 answers: those are the only
// ones written while the request has no matched pattern.
type unroutedWriter struct {
	http.ResponseWriter
	r         *http.Request
	rewritten bool
}

func (u *unroutedWriter) WriteHeader(status int) {
	if u.r.Pattern == "" && (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) {
		u.rewritten = true
		detail := "no such endpoint: see /openapi.json"
		if status == http.StatusMethodNotAllowed {
			detail = u.r.Method + " is not allowed here; allowed: " + u.Header().Get("Allow")
		}
		h := u.Header()
		h.Set("Content-Type", "application/problem+json")
		encodeStatus(u.ResponseWriter, status, problem{Type: "about:blank", Title: http.StatusText(status),
			Status: status, Detail: detail})
		return
	}
	u.ResponseWriter.WriteHeader(status)
}

func (u *unroutedWriter) Write(b []byte) (int, error) {
	if u.rewritten {
		return len(b), nil // the ServeMux's plain-text body; the problem is written
	}
	return u.ResponseWriter.Write(b)
}

func (u *unroutedWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// saneRequestID accepts short ids of letters, digits and -_.: anything else could
// inject into logs or headers and is replaced.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (flush, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// FlushError passes a streaming response's flush on (GET /v1/stream) with its error,
// as http.ResponseController asks for it; Flush is the same for code that wants an
// http.Flusher.
func (r *statusRecorder) FlushError() error {
	r.wroteHeader = true
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Flush() { _ = r.FlushError() }

// cors lets the browsers of the allowed origins read the GET endpoints. Ingest stays
// same-origin: edge daemons are not browsers. An empty allowlist adds nothing.
func cors(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	any := false
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[o] = true
		any = any || o == "*"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(any || set[origin]) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			if r.Header.Get("Access-Control-Request-Method") != http.MethodGet {
				w.WriteHeader(http.StatusNoContent) // no CORS headers: the browser refuses
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", "GET")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID") // Last-Event-ID: a stream resuming
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "X-Request-ID")
		}
		next.ServeHTTP(w, r)
	})
}
