package collect

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collector's own: it runs apart from serve, on the Pi.
type Metrics struct {
	registry   *prometheus.Registry
	readings   prometheus.Counter
	readFailed *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	uploads    *prometheus.CounterVec
}

// NewMetrics registers the collector's metrics; spool depth and the age of the oldest
// spooled reading are read from spool when scraped.
func NewMetrics(spool *Spool, now func() time.Time) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sungrow_collect_readings_total", Help: "Readings taken from the inverter and spooled."}),
		readFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_collect_read_failures_total", Help: "Failed reads of the inverter, by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_collect_dropped_total", Help: "Readings dropped: spool_max (the oldest, the spool being full)."}, []string{"reason"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sungrow_collect_uploads_total", Help: "POST /v1/ingest requests, by answer status (or network)."}, []string{"status"}),
	}
	m.registry.MustRegister(m.readings, m.readFailed, m.dropped, m.uploads,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sungrow_collect_spool_depth", Help: "Readings waiting in the spool."},
			func() float64 { return float64(spool.Depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sungrow_collect_spool_oldest_age_seconds", Help: "Age of the oldest spooled reading; 0 when empty."},
			func() float64 {
				if t := spool.OldestTime(); !t.IsZero() {
					return now().Sub(t).Seconds()
				}
				return 0
			}))
	return m
}

func (m *Metrics) ReadTaken()                   { m.readings.Inc() }
func (m *Metrics) ReadFailed(reason string)     { m.readFailed.WithLabelValues(reason).Inc() }
func (m *Metrics) Dropped(reason string, n int) { m.dropped.WithLabelValues(reason).Add(float64(n)) }
func (m *Metrics) Uploaded(status string)       { m.uploads.WithLabelValues(status).Inc() }

// Handler serves /health and /metrics for --listen.
func Handler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}
