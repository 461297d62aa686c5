package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// SeriesReader answers GET /v1/series; series.Service is the real one.
type SeriesReader interface {
	// ParseDate reads YYYY-MM-DD (empty: today) as local midnight in the series zone.
	ParseDate(v string, now time.Time) (time.Time, error)
	Series(ctx context.Context, deviceID, frame string, date time.Time) ([]series.Bucket, error)
}

// LateDataNotifier is told the time span of every batch that stored new samples, so
// aggregate buckets already materialized there get refreshed in the background. It
// must return at once: ingest latency does not wait for refreshes.
type LateDataNotifier interface {
	Touched(deviceID string, from, to time.Time)
}

// handleSeries answers with the buckets of one frame of the device's history.
func handleSeries(logger *slog.Logger, reader SeriesReader, now func() time.Time) http.Handler {
	type response struct {
		DeviceID string          `json:"device_id"`
		Frame    string          `json:"frame"`
		Series   []series.Bucket `json:"series"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device, err := queryDevice(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if reader == nil {
			respondError(w, r, logger, errStatus(http.StatusServiceUnavailable, "series are not configured on this server"))
			return
		}
		q := r.URL.Query()
		frame := q.Get("frame")
		if err := series.CheckFrame(frame); err != nil {
			respondError(w, r, logger, fieldErrors(map[string]string{"frame": err.Error()}))
			return
		}
		date, err := reader.ParseDate(q.Get("date"), now())
		if err != nil {
			respondError(w, r, logger, fieldErrors(map[string]string{"date": err.Error()}))
			return
		}
		buckets, err := reader.Series(r.Context(), device, frame, date)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if buckets == nil {
			buckets = []series.Bucket{} // "series": [], never null
		}
		encode(w, http.StatusOK, response{DeviceID: device, Frame: frame, Series: buckets})
	})
}

// withLateData tells late about the span of every batch store inserted new rows from.
// It wraps the store rather than living in handleIngest so ingest stays about ingest.
func withLateData(store SampleStore, late LateDataNotifier) SampleStore {
	if late == nil {
		return store
	}
	return lateDataStore{SampleStore: store, late: late}
}

type lateDataStore struct {
	SampleStore
	late LateDataNotifier
}

func (s lateDataStore) Insert(ctx context.Context, deviceID string, samples []telemetry.Sample) (int64, error) {
	n, err := s.SampleStore.Insert(ctx, deviceID, samples)
	s.touched(deviceID, samples, n, err)
	return n, err
}

func (s lateDataStore) InsertSettingAside(ctx context.Context, deviceID string, samples []telemetry.Sample,
	aside []telemetry.SetAside, receivedAt time.Time) (int64, error) {
	n, err := s.SampleStore.InsertSettingAside(ctx, deviceID, samples, aside, receivedAt)
	s.touched(deviceID, samples, n, err)
	return n, err
}

// touched tells late about the span of samples when inserting them stored new rows.
func (s lateDataStore) touched(deviceID string, samples []telemetry.Sample, n int64, err error) {
	if err != nil || n == 0 {
		return
	}
	lo, hi := samples[0].TS, samples[0].TS
	for _, smp := range samples[1:] {
		if smp.TS.Before(lo) {
			lo = smp.TS
		}
		if smp.TS.After(hi) {
			hi = smp.TS
		}
	}
	s.late.Touched(deviceID, lo, hi)
}
