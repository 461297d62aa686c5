package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/telemetry"
)

// SeriesReader answers GET /v1/series; series.Service is the real one.
type SeriesReader interface {
	// ParseDate reads YYYY-MM-DD (empty: today) as local midnight in the series zone.
	ParseDate(v string, now time.Time) (time.Time, error)
	Series(ctx context.Context, deviceID, frame string, date time.Time) (series.Result, error)
}

// LateDataNotifier is told the time span of every batch that stored new samples, so
// aggregate buckets already materialized there get refreshed in the background. It
// must return at once: ingest latency does not wait for refreshes.
type LateDataNotifier interface {
	Touched(deviceID string, from, to time.Time)
}

// handleSeries answers with the buckets of one frame of the device's history and their
// totals, as JSON, or the buckets as CSV (format=csv, or Accept: text/csv).
func handleSeries(logger *slog.Logger, reader SeriesReader, now func() time.Time) http.Handler {
	type response struct {
		DeviceID string          `json:"device_id"`
		Frame    string          `json:"frame"`
		Series   []series.Bucket `json:"series"`
		Totals   series.Flows    `json:"totals"`
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
		asCSV, err := wantsCSV(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		res, err := reader.Series(r.Context(), device, frame, date)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if asCSV {
			name := fmt.Sprintf("sungrow-%s-%s-%s.csv", fileNamePart(device), frame, date.Format(time.DateOnly))
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
			encodeCSV(w, res.Buckets)
			return
		}
		if res.Buckets == nil {
			res.Buckets = []series.Bucket{} // "series": [], never null
		}
		encode(w, http.StatusOK, response{DeviceID: device, Frame: frame, Series: res.Buckets, Totals: res.Totals})
	})
}

// wantsCSV reads the format parameter (json, the default, or csv) and, without it, the
// Accept header.
func wantsCSV(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fieldErrors(map[string]string{"format": "want json or csv"})
}

// fileNamePart keeps the characters of s that are safe in a file name on every system.
func fileNamePart(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return c
		}
		return '_'
	}, s)
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
