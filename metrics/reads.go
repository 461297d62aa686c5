package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchReads registers the read replicas' metrics (DATABASE_READ_URL) and returns what
// updates them: lag sets sungrow_db_replica_lag_seconds{replica}, read counts one read
// in sungrow_db_reads_total{target}. Without replicas it is not called, and neither
// metric appears.
func (m *Metrics) WatchReads() (lag func(replica string, seconds float64), read func(target string)) {
	lags := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sungrow_db_replica_lag_seconds",
		Help: "How far each read replica's answers are behind the primary, checked every second; NaN while it is down.",
	}, []string{"replica"})
	reads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sungrow_db_reads_total",
		Help: "History reads (series, quarantine) by where they ran: a read replica, or the primary when none was usable.",
	}, []string{"target"})
	m.registry.MustRegister(lags, reads)
	reads.WithLabelValues("primary")
	reads.WithLabelValues("replica")
	return func(replica string, seconds float64) { lags.WithLabelValues(replica).Set(seconds) },
		func(target string) { reads.WithLabelValues(target).Inc() }
}
