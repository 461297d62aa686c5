// Package httpapi is sungrow's HTTP surface: NewServer wires the routes (all listed in
// routes.go) to their handlers, and the middleware, encode/decode and error helpers
// every handler shares.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/sungrow/sungrow/alerts"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/telemetry"
)

// Deps is everything the HTTP API needs; NewServer reads nothing else.
type Deps struct {
	Logger *slog.Logger
	// Devices tells which device a bearer token speaks for (devices.Registry).
	Devices Authenticator
	// Tokens, used when Devices is nil, is a fixed map from token to device (tests,
	// and anything else that needs no devices table).
	Tokens  map[string]string
	Samples SampleStore
	// Cache serves GET /v1/realtime and is told when a device has new samples; nil
	// means no cache (CACHE_TTL_S=0): every realtime read queries the database.
	Cache                RealtimeCache
	MaxRequestBytes      int64
	MaxSamplesPerRequest int
	Now                  func() time.Time
	// Metrics receives the request, ingest and cache counters; nil: a private registry.
	Metrics *metrics.Metrics
	// Ready lists what GET /ready checks.
	Ready []ReadyCheck
	// CORSOrigins may read the GET endpoints from a browser; empty: no CORS headers.
	CORSOrigins []string
	// Series answers GET /v1/series; nil: 503.
	Series SeriesReader
	// LateData is told the span of each batch that stored new samples; nil: nobody.
	LateData LateDataNotifier
	// Quarantine answers GET /v1/quarantine; nil: 503.
	Quarantine QuarantineReader
	// Stored are told after each batch that inserted rows (live consumers: the
	// stream hub, MQTT).
	Stored []StoredListener
	// Stream serves GET /v1/stream; nil: 503.
	Stream StreamHub
	// StreamKeepalive is the interval of a stream's keepalive comments; 0: 15 s.
	StreamKeepalive time.Duration
	// Alerts answers GET /v1/alerts; nil: 503.
	Alerts AlertLister
}

// AlertLister lists the alert rules that watch a device, with their state for it;
// alerts.Store is the real one.
type AlertLister interface {
	List(ctx context.Context, deviceID string) ([]alerts.Status, error)
}

// QuarantineReader lists the set-aside samples of a device; telemetry.Store is the
// real one.
type QuarantineReader interface {
	Quarantined(ctx context.Context, deviceID string, limit int) (telemetry.QuarantineSummary, []telemetry.QuarantineEntry, error)
}

// StoredListener hears that a batch of a device inserted at least one row; newest is
// the latest ts among the rows it inserted. Ingest calls it after the cache
// invalidation, on the request path: it must return at once (no I/O, no waiting).
type StoredListener interface {
	Stored(deviceID string, newest time.Time)
}

// SampleStore writes and reads samples; telemetry.Store is the real one.
type SampleStore interface {
	Insert(ctx context.Context, deviceID string, samples []telemetry.Sample) (int64, error)
	// InsertSettingAside is Insert plus the implausible samples of the batch, set aside
	// in the quarantine in the same transaction; with none it is Insert.
	InsertSettingAside(ctx context.Context, deviceID string, samples []telemetry.Sample,
		aside []telemetry.SetAside, receivedAt time.Time) (int64, error)
	// Latest returns the newest sample of a device, or telemetry.ErrNotFound.
	Latest(ctx context.Context, deviceID string) (telemetry.Sample, error)
}

// RealtimeInvalidator forgets the cached newest sample of a device. It is best effort:
// it logs its own failures and never fails the request that calls it.
type RealtimeInvalidator interface {
	Invalidate(ctx context.Context, deviceID string)
}

// RealtimeCache holds each device's encoded realtime answer; cache.Realtime (Redis or
// in-process) is the real one. Get returns the cached answer or calls load, once for
// all concurrent misses of a device, and caches what it returns; its own failures are
// logged and end in load, never in an error.
type RealtimeCache interface {
	RealtimeInvalidator
	Get(ctx context.Context, deviceID string, load func(context.Context) ([]byte, error)) ([]byte, error)
}

// NewServer returns the whole HTTP API as one handler.
func NewServer(deps Deps) http.Handler {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.StreamKeepalive <= 0 {
		deps.StreamKeepalive = 15 * time.Second
	}
	if deps.Devices == nil {
		deps.Devices = devices.Static(deps.Tokens)
	}
	mux := http.NewServeMux()
	addRoutes(mux, deps)
	return observe(deps.Logger, deps.Metrics, cors(deps.CORSOrigins, problemsForUnrouted(mux)))
}
