package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// maxFuture is how far ahead of the server's clock a sample may be stamped: beyond it
// the inverter's clock is wrong and the sample would pollute tomorrow's series.
const maxFuture = 24 * time.Hour

// handleIngest stores a batch of samples of the token's device, all or nothing, and
// answers with how many were new.
func handleIngest(logger *slog.Logger, store SampleStore, cache RealtimeInvalidator,
	maxBytes int64, maxSamples int, now func() time.Time) http.Handler {
	type response struct {
		Inserted int64 `json:"inserted"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		device := authorizedDevice(r.Context())
		samples, err := decodeIngest(w, r, device, maxBytes, maxSamples, now())
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		inserted, err := store.Insert(r.Context(), device, samples)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if inserted > 0 && cache != nil {
			cache.Invalidate(r.Context(), device)
		}
		encode(w, http.StatusOK, response{Inserted: inserted})
	})
}

// wireSample is a sample as it arrives: pointers tell a missing field from a zero.
type wireSample struct {
	DeviceID      *string  `json:"device_id"`
	TS            *string  `json:"ts"`
	PVPowerW      *float64 `json:"pv_power_w"`
	PVDailyKWh    *float64 `json:"pv_daily_kwh"`
	BatteryPowerW *float64 `json:"battery_power_w"`
	BatterySoCPct *float64 `json:"battery_soc_pct"`
	BatteryTempC  *float64 `json:"battery_temp_c"`
	LoadPowerW    *float64 `json:"load_power_w"`
	ExportPowerW  *float64 `json:"export_power_w"`
	SampleCount   *int64   `json:"sample_count"`
}

// decodeIngest reads, bounds and validates an ingest body. Its errors carry their
// status: 413, 415, 403 or 422.
func decodeIngest(w http.ResponseWriter, r *http.Request, device string, maxBytes int64,
	maxSamples int, now time.Time) ([]telemetry.Sample, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return nil, errStatus(http.StatusUnsupportedMediaType, "Content-Type %q is not JSON: send application/json", ct)
	}
	if r.ContentLength > maxBytes {
		return nil, errStatus(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, maxBytes)
	}
	// MaxBytesReader stops a body without Content-Length at the limit, so no more than
	// maxBytes is ever held in memory.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errStatus(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", maxBytes)
		}
		return nil, errStatus(http.StatusBadRequest, "read body: %v", err)
	}

	var req struct {
		Samples *[]wireSample `json:"samples"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return nil, locateDecodeError(body, err)
	}
	if req.Samples == nil {
		return nil, fieldErrors(map[string]string{"samples": "required: a list of samples"})
	}
	wire := *req.Samples
	if len(wire) > maxSamples {
		return nil, errStatus(http.StatusRequestEntityTooLarge, "%d samples is over the limit of %d per request", len(wire), maxSamples)
	}

	samples := make([]telemetry.Sample, len(wire))
	problems := make(map[string]string)
	for i, ws := range wire {
		if ws.DeviceID != nil && *ws.DeviceID != "" && *ws.DeviceID != device {
			return nil, errStatus(http.StatusForbidden, "samples[%d].device_id: this token may not write that device", i)
		}
		samples[i] = ws.valid(fmt.Sprintf("samples[%d].", i), now, problems)
	}
	if len(problems) > 0 {
		return nil, fieldErrors(problems)
	}
	return samples, nil
}

// valid converts a wire sample, adding what is wrong with it to problems under
// prefix+field.
func (ws wireSample) valid(prefix string, now time.Time, problems map[string]string) telemetry.Sample {
	var s telemetry.Sample
	fail := func(field, msg string) { problems[prefix+field] = msg }

	switch {
	case ws.DeviceID == nil:
		fail("device_id", "required")
	case strings.TrimSpace(*ws.DeviceID) == "":
		fail("device_id", "must not be empty")
	default:
		s.DeviceID = *ws.DeviceID
	}

	if ws.TS == nil {
		fail("ts", "required")
	} else if ts, err := time.Parse(time.RFC3339Nano, *ws.TS); err != nil {
		fail("ts", "want an RFC 3339 time with a UTC offset, e.g. 2026-02-15T08:00:05Z")
	} else if ts.After(now.Add(maxFuture)) {
		fail("ts", "more than 24 h in the future: check the inverter's clock")
	} else {
		s.TS = ts
	}

	required := func(field string, v *float64) float64 {
		if v == nil {
			fail(field, "required")
			return 0
		}
		return *v
	}
	s.PVPowerW = required("pv_power_w", ws.PVPowerW)
	s.BatteryPowerW = required("battery_power_w", ws.BatteryPowerW)
	s.BatterySoCPct = required("battery_soc_pct", ws.BatterySoCPct)
	s.LoadPowerW = required("load_power_w", ws.LoadPowerW)
	s.ExportPowerW = required("export_power_w", ws.ExportPowerW)
	s.PVDailyKWh, s.BatteryTempC = ws.PVDailyKWh, ws.BatteryTempC

	// JSON cannot spell NaN or infinity, but a number too large for float64 would
	// already have failed decoding; this guards the invariant the store relies on.
	for _, m := range [...]struct {
		field string
		v     *float64
	}{
		{"pv_power_w", &s.PVPowerW}, {"battery_power_w", &s.BatteryPowerW},
		{"battery_soc_pct", &s.BatterySoCPct}, {"load_power_w", &s.LoadPowerW},
		{"export_power_w", &s.ExportPowerW}, {"pv_daily_kwh", s.PVDailyKWh},
		{"battery_temp_c", s.BatteryTempC},
	} {
		if m.v != nil && (math.IsNaN(*m.v) || math.IsInf(*m.v, 0)) {
			fail(m.field, "must be a finite number")
		}
	}
	if ws.BatterySoCPct != nil && (s.BatterySoCPct < 0 || s.BatterySoCPct > 100) {
		fail("battery_soc_pct", "must be between 0 and 100")
	}

	s.SampleCount = 1
	if ws.SampleCount != nil {
		if *ws.SampleCount < 1 || *ws.SampleCount > math.MaxInt32 {
			fail("sample_count", "must be a whole number from 1 to 2147483647")
		} else {
			s.SampleCount = int32(*ws.SampleCount)
		}
	}
	return s
}

// decodeStrict decodes one JSON value and refuses anything after it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// locateDecodeError turns a failed decode into a 422 that names the sample and field,
// by decoding the samples one by one: slower, but only on the error path.
func locateDecodeError(body []byte, err error) error {
	var envelope struct {
		Samples []json.RawMessage `json:"samples"`
	}
	if json.Unmarshal(body, &envelope) != nil {
		return fieldErrors(map[string]string{"body": describeJSONError(err)})
	}
	for i, raw := range envelope.Samples {
		var ws wireSample
		if err := json.Unmarshal(raw, &ws); err != nil {
			field := fmt.Sprintf("samples[%d]", i)
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				field += "." + typeErr.Field
			}
			return fieldErrors(map[string]string{field: describeJSONError(err)})
		}
	}
	return fieldErrors(map[string]string{"body": describeJSONError(err)})
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("want %s, got %s", jsonKind(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	}
	return "malformed JSON: " + err.Error()
}

func jsonKind(goType string) string {
	switch goType {
	case "float64":
		return "a number"
	case "int64":
		return "a whole number"
	case "string":
		return "a string"
	}
	if strings.HasPrefix(goType, "[]") {
		return "a list"
	}
	return "an object"
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
