package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sungrow/sungrow/telemetry"
)

// encode writes v as a JSON response with the given status.
func encode[T any](w http.ResponseWriter, status int, v T) {
	w.Header().Set("Content-Type", "application/json")
	encodeStatus(w, status, v)
}

// encodeStatus writes v as JSON under the Content-Type already set.
func encodeStatus[T any](w http.ResponseWriter, status int, v T) {
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}

// problem is an RFC 9457 problem document; clients read its detail.
type problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Errors map[string]string `json:"errors,omitempty"`
}

// apiError is an error a handler answers with a status of its choosing.
type apiError struct {
	status int
	detail string
	fields map[string]string // e.g. "samples[1].ts" → what is wrong with it
}

func (e *apiError) Error() string { return e.detail }

func errStatus(status int, format string, args ...any) error {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

// maxFieldErrors bounds the errors map of a 422 and the problems of a 200.
const maxFieldErrors = 100

// fieldErrors is a 422 that names the fields at fault (at most maxFieldErrors of them);
// its detail lists the first few in order of sample index.
func fieldErrors(fields map[string]string) error {
	return &apiError{status: http.StatusUnprocessableEntity, detail: firstFields(fields, 5), fields: boundedFields(fields)}
}

// sortedFields orders field names such as "samples[10].ts" by sample index, then name.
func sortedFields(fields map[string]string) []string {
	type key struct {
		name  string
		index int // the sample index of "samples[i]...", -1 for other fields
	}
	keys := make([]key, 0, len(fields))
	for k := range fields {
		i := -1
		if rest, ok := strings.CutPrefix(k, "samples["); ok {
			if end := strings.IndexByte(rest, ']'); end > 0 {
				if n, err := strconv.Atoi(rest[:end]); err == nil {
					i = n
				}
			}
		}
		keys = append(keys, key{k, i})
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].index != keys[b].index {
			return keys[a].index < keys[b].index
		}
		return keys[a].name < keys[b].name
	})
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// firstFields lists the first n fields and what is wrong with them in one line.
func firstFields(fields map[string]string, n int) string {
	names := sortedFields(fields)
	parts := make([]string, 0, n+1)
	for i, name := range names {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(names)-n))
			break
		}
		parts = append(parts, name+": "+fields[name])
	}
	return strings.Join(parts, "; ")
}

// boundedFields keeps the first maxFieldErrors fields: a batch of a thousand broken
// samples needs its first problems named, not an answer ten times its size.
func boundedFields(fields map[string]string) map[string]string {
	if len(fields) <= maxFieldErrors {
		return fields
	}
	kept := make(map[string]string, maxFieldErrors)
	for _, name := range sortedFields(fields)[:maxFieldErrors] {
		kept[name] = fields[name]
	}
	return kept
}

// statusClientClosed answers a request whose client went away before the answer.
const statusClientClosed = 499

// respondError is the one place that turns an error into an HTTP status.
func respondError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, detail := http.StatusInternalServerError, "internal error"
	var fields map[string]string
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr):
		status, detail, fields = apiErr.status, apiErr.detail, apiErr.fields
	case errors.Is(err, telemetry.ErrNotFound):
		status, detail = http.StatusNotFound, "no samples stored for this device yet"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client hung up; nobody reads this answer. 499 is nginx's word for it and
		// keeps the access log and the metrics from counting it as a server error.
		status, detail = statusClientClosed, "the client closed the request"
	case databaseUnavailable(err):
		status, detail = http.StatusServiceUnavailable, "the database is unavailable; retry later"
		if r.Method == http.MethodPost {
			detail = "the database is unavailable; nothing was stored, retry later"
		}
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	encodeStatus(w, status, problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Errors: fields,
	})
}

// databaseUnavailable tells a database that could not be reached (or timed out) from
// one that answered with an error: the first is worth a retry, the second is a bug.
func databaseUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Server-side errors that mean "not now": shutting down, too many connections,
		// read-only standby, or a statement cancelled by its timeout.
		if len(pgErr.Code) < 2 { // a proxy's error without a proper SQLSTATE
			return false
		}
		switch pgErr.Code[:2] {
		case "08", "53", "57":
			return true
		}
		return pgErr.Code == "25006"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	// A connection cut mid-query (the database crashed or restarted) ends in an
	// unexpected EOF; body decoding errors never get here, they are 4xx already.
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		pgconn.SafeToRetry(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
