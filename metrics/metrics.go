// Package metrics is sungrow's one Prometheus registry: the HTTP layer, the realtime
// cache and the database pool all report into it, and GET /metrics shows it whole. It
// is a package because several others write to it and none of them should own it.
package metrics

import (
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the instruments the program updates.
type Metrics struct {
	registry *prometheus.Registry

	InFlight        prometheus.Gauge
	Requests        *prometheus.CounterVec   // route, method, status
	RequestDuration *prometheus.HistogramVec // route, method
	IngestedRows    prometheus.Counter
	ReceivedSamples prometheus.Counter
	CacheResults    *prometheus.CounterVec // result: hit or miss
	StreamsOpen     prometheus.Gauge
	StreamEvents    prometheus.Counter
	StorageBytes    *prometheus.GaugeVec // relation: sungrow_samples or an aggregate
	// QuarantinedSamples counts implausible samples set aside by ingest, by reason.
	QuarantinedSamples *prometheus.CounterVec
	// The Home Assistant bridge: whether it holds a broker connection, and its
	// messages.
	MQTTConnected     prometheus.Gauge
	MQTTPublished     prometheus.Counter
	MQTTPublishErrors prometheus.Counter
	// The aggregate audit: buckets it recomputed, by aggregate, and how long the last
	// audit took.
	AggregateRepairs      *prometheus.CounterVec
	AggregateAuditSeconds prometheus.Gauge
}

// New returns a fresh registry with the Go runtime and process collectors in it.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		registry: reg,
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sungrow_http_requests_in_flight",
			Help: "HTTP requests being answered right now.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sungrow_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		IngestedRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_ingest_rows_inserted_total",
			Help: "Samples stored by POST /v1/ingest (re-sent samples not counted).",
		}),
		ReceivedSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_ingest_samples_received_total",
			Help: "Valid samples received by POST /v1/ingest, new or re-sent.",
		}),
		CacheResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_realtime_cache_requests_total",
			Help: "GET /v1/realtime answers, by whether the cache had them (hit) or the database was asked (miss).",
		}, []string{"result"}),
		StreamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sungrow_stream_open",
			Help: "GET /v1/stream responses open right now.",
		}),
		StreamEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_stream_events_sent_total",
			Help: "Sample events written to GET /v1/stream clients.",
		}),
		QuarantinedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_ingest_samples_quarantined_total",
			Help: "Implausible samples POST /v1/ingest set aside instead of storing, new or re-sent, by reason (a sample with two implausible fields counts under both).",
		}, []string{"reason"}),
		StorageBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sungrow_storage_bytes",
			Help: "Bytes on disk of the raw samples table and of each series aggregate, indexes included; read in the background at most once a minute.",
		}, []string{"relation"}),
		MQTTConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sungrow_mqtt_connected",
			Help: "1 while the Home Assistant bridge is connected to its MQTT broker, else 0.",
		}),
		MQTTPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_mqtt_messages_published_total",
			Help: "MQTT messages (discovery, state, availability) the broker acknowledged.",
		}),
		MQTTPublishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_mqtt_publish_errors_total",
			Help: "MQTT messages that could not be published (they are sent again later).",
		}),
		AggregateRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_aggregate_repairs_total",
			Help: "Series buckets the aggregate audit found differing from the level below and recomputed, by aggregate.",
		}, []string{"aggregate"}),
		AggregateAuditSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sungrow_aggregate_audit_seconds",
			Help: "How long the last aggregate audit of this instance took (check and repairs).",
		}),
	}
	reg.MustRegister(m.AggregateRepairs, m.AggregateAuditSeconds)
	reg.MustRegister(m.InFlight, m.Requests, m.RequestDuration, m.IngestedRows, m.ReceivedSamples, m.CacheResults,
		m.QuarantinedSamples, m.StreamsOpen, m.StreamEvents, m.StorageBytes, m.MQTTConnected, m.MQTTPublished, m.MQTTPublishErrors)
	return m
}

// WatchPool exports the statistics of a database pool.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	m.registry.MustRegister(poolCollector{pool: pool})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

var (
	poolConns = prometheus.NewDesc("sungrow_db_pool_connections",
		"Database pool connections by state (acquired, idle, constructing) and the maximum (max).", []string{"state"}, nil)
	poolAcquires = prometheus.NewDesc("sungrow_db_pool_acquires_total",
		"Connections acquired from the pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("sungrow_db_pool_empty_acquires_total",
		"Acquires that had to wait because no idle connection was there.", nil, nil)
	poolAcquireWait = prometheus.NewDesc("sungrow_db_pool_acquire_wait_seconds_total",
		"Time spent waiting for a connection.", nil, nil)
)

// poolCollector reads the pool's statistics when scraped, so they are never stale.
type poolCollector struct{ pool *pgxpool.Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConns
	ch <- poolAcquires
	ch <- poolEmptyAcquires
	ch <- poolAcquireWait
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.MaxConns()), "max")
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolAcquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
