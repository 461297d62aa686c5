package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ReadyCheck is one dependency GET /ready asks about.
type ReadyCheck struct {
	Name  string // e.g. "database", "redis"
	Check func(ctx context.Context) error
	// Public says the check's error tells nothing about internals, so /ready shows it
	// instead of "failed" (e.g. that no device token exists).
	Public bool
	// Optional says the instance serves without it (a read replica: reads go to the
	// primary instead): its failure shows, as for Public, but leaves the answer 200.
	Optional bool
}

// handleReady asks every dependency at once, each within a second, and answers 503
// naming each that failed, so a load balancer routes around an instance that cannot
// serve while /health keeps saying the process is alive.
func handleReady(logger *slog.Logger, checks []ReadyCheck) http.Handler {
	type response struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		results := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = c.Check(ctx)
			}()
		}
		wg.Wait()

		res := response{Status: "ready", Checks: make(map[string]string, len(checks))}
		var failed []string
		for i, c := range checks {
			res.Checks[c.Name] = "ok"
			if results[i] != nil {
				// The endpoint has no auth: the error (hosts, users, database names)
				// goes to the log, not to the caller.
				res.Checks[c.Name] = "failed"
				if c.Public || c.Optional {
					res.Checks[c.Name] = results[i].Error()
				}
				if c.Optional {
					continue
				}
				failed = append(failed, c.Name)
				logger.WarnContext(r.Context(), "not ready", "check", c.Name, "err", results[i])
			}
		}
		if len(failed) > 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			encodeStatus(w, http.StatusServiceUnavailable, struct {
				problem
				Checks map[string]string `json:"checks"`
			}{problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
				Status: http.StatusServiceUnavailable, Detail: "not ready: " + strings.Join(failed, ", ") + " failed"}, res.Checks})
			return
		}
		encode(w, http.StatusOK, res)
	})
}
