package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/telemetry"
)

// nopStore stores nothing, so BenchmarkIngestDecode measures what the handler itself
// costs (decoding, validation, the answer) without the database.
type nopStore struct{}

func (nopStore) Insert(_ context.Context, _ string, s []telemetry.Sample) (int64, error) {
	return int64(len(s)), nil
}
func (nopStore) InsertSettingAside(_ context.Context, _ string, s []telemetry.Sample, _ []telemetry.SetAside, _ time.Time) (int64, error) {
	return int64(len(s)), nil
}
func (nopStore) Latest(context.Context, string) (telemetry.Sample, error) {
	return telemetry.Sample{}, telemetry.ErrNotFound
}

// BenchmarkIngestDecode is POST /v1/ingest of one 1000-sample batch without HTTP or a
// database: the hot path that plausible-only batches take on every edge upload.
//
//	go test -run '^$' -bench IngestDecode -benchmem ./httpapi/
func BenchmarkIngestDecode(b *testing.B) {
	handler := httpapi.NewServer(httpapi.Deps{
		Logger:               slog.New(slog.DiscardHandler),
		Tokens:               map[string]string{token: device},
		Samples:              nopStore{},
		MaxRequestBytes:      1 << 20,
		MaxSamplesPerRequest: 1000,
		Now:                  func() time.Time { return fixedNow },
	})
	body := benchBody(0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
