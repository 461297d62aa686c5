package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sungrow/sungrow/telemetry"
)

// ingestBatch is a decoded ingest body: the plausible samples to store, the
// implausible ones to set aside, and what is implausible about them.
type ingestBatch struct {
	samples []telemetry.Sample
	aside   []telemetry.SetAside
	// problems names each implausible field, "samples[i].field" → reason, as a 422 would.
	problems map[string]string
	reasons  []string // the reason code of each problem, for the metrics
}

// decodeIngest reads, bounds and validates an ingest body. A malformed body, or one
// with a malformed sample, is an error that carries its status: 413, 415, 403 or 422;
// implausible samples are not an error but set aside in the batch (see telemetry).
//
// The body is decoded as a token stream (jsontext, the tokenizer of the json/v2 design)
// straight from the bounded reader instead of through encoding/json's reflection: it is
// the hot path of every edge daemon, a few times faster this way, never holds more than
// the limit in memory, rejects duplicate keys, and knows exactly which sample and field a
// problem is in, so every problem of a batch is reported at once.
func decodeIngest(w http.ResponseWriter, r *http.Request, device string, maxBytes int64,
	maxSamples int, now time.Time) (ingestBatch, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return ingestBatch{}, errStatus(http.StatusUnsupportedMediaType, "Content-Type %q is not JSON: send application/json", ct)
	}
	if r.ContentLength > maxBytes {
		return ingestBatch{}, errStatus(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, maxBytes)
	}
	// MaxBytesReader stops a body without Content-Length at the limit.
	dec := jsontext.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	d := ingestDecoder{dec: dec, device: device, maxSamples: maxSamples, now: now, problems: map[string]string{}}
	samples, err := d.decode()
	if err != nil {
		return ingestBatch{}, d.classify(err, maxBytes)
	}
	if len(d.problems) > 0 {
		return ingestBatch{}, fieldErrors(d.problems)
	}
	d.batch.samples = samples
	return d.batch, nil
}

type ingestDecoder struct {
	dec        *jsontext.Decoder
	device     string
	maxSamples int
	now        time.Time
	problems   map[string]string // malformed: the batch is refused
	batch      ingestBatch       // what is set aside so far
}

// errForbiddenDevice and errTooMany stop decoding early.
type errForbiddenDevice struct{ index int }
type errTooMany struct{ max int }

func (e errForbiddenDevice) Error() string {
	return fmt.Sprintf("samples[%d].device_id: this token may not write that device", e.index)
}
func (e errTooMany) Error() string {
	return fmt.Sprintf("over the limit of %d samples per request", e.max)
}

// classify gives a decoding error its status and a detail that names where it is.
func (d *ingestDecoder) classify(err error, maxBytes int64) error {
	var tooLarge *http.MaxBytesError
	var forbidden errForbiddenDevice
	var tooMany errTooMany
	var syntax *jsontext.SyntacticError
	switch {
	case errors.As(err, &tooLarge):
		return errStatus(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", maxBytes)
	case errors.As(err, &forbidden):
		return errStatus(http.StatusForbidden, "%s", forbidden.Error())
	case errors.As(err, &tooMany):
		return errStatus(http.StatusRequestEntityTooLarge, "%s", tooMany.Error())
	case errors.As(err, &syntax):
		return fieldErrors(map[string]string{pointerField(syntax.JSONPointer): "malformed JSON: " + syntaxReason(syntax)})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fieldErrors(map[string]string{"body": "malformed JSON: the body ends too early"})
	case errors.Is(err, errNotIngestBody):
		return fieldErrors(map[string]string{"body": err.Error()})
	}
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return err
	}
	return errStatus(http.StatusBadRequest, "read body: %v", err)
}

var errNotIngestBody = errors.New(`want a JSON object {"samples": [...]}`)

func syntaxReason(e *jsontext.SyntacticError) string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Error()
}

// pointerField turns a JSON pointer such as /samples/3/ts into samples[3].ts.
func pointerField(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

func (d *ingestDecoder) decode() ([]telemetry.Sample, error) {
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	var samples []telemetry.Sample
	seen := false
	for d.dec.PeekKind() != '}' {
		name, err := d.dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if name.String() != "samples" {
			if err := d.dec.SkipValue(); err != nil {
				return nil, err
			}
			continue
		}
		seen = true
		if d.dec.PeekKind() != '[' {
			if err := d.dec.SkipValue(); err != nil {
				return nil, err
			}
			d.problems["samples"] = "want a list of samples"
			continue
		}
		if samples, err = d.decodeList(); err != nil {
			return nil, err
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return nil, err
	}
	// Anything after the object is an error, not something to ignore.
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("%w: unexpected data after the object", errNotIngestBody)
		}
		return nil, err
	}
	if !seen {
		d.problems["samples"] = "required: a list of samples"
	}
	return samples, nil
}

func (d *ingestDecoder) expect(kind jsontext.Kind) error {
	if d.dec.PeekKind() != kind {
		if err := d.dec.SkipValue(); err != nil {
			return err
		}
		return errNotIngestBody
	}
	_, err := d.dec.ReadToken()
	return err
}

func (d *ingestDecoder) decodeList() ([]telemetry.Sample, error) {
	if _, err := d.dec.ReadToken(); err != nil { // '['
		return nil, err
	}
	samples := make([]telemetry.Sample, 0, 64)
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		if i == d.maxSamples {
			return nil, errTooMany{max: d.maxSamples}
		}
		s, aside, err := d.decodeSample(i)
		if err != nil {
			return nil, err
		}
		if !aside {
			samples = append(samples, s)
		}
	}
	_, err := d.dec.ReadToken() // ']'
	return samples, err
}

// field bits say which fields a sample carried (null counts as absent).
const (
	hasDeviceID = 1 << iota
	hasTS
	hasPVPower
	hasBatteryPower
	hasSoC
	hasLoad
	hasExport
)

var requiredFields = [...]struct {
	bit  int
	name string
}{
	{hasDeviceID, "device_id"}, {hasTS, "ts"}, {hasPVPower, "pv_power_w"},
	{hasBatteryPower, "battery_power_w"}, {hasSoC, "battery_soc_pct"},
	{hasLoad, "load_power_w"}, {hasExport, "export_power_w"},
}

// decodeSample reads sample i; aside says it is well formed but implausible and was set
// aside in d.batch instead of being returned for storing.
func (d *ingestDecoder) decodeSample(i int) (s telemetry.Sample, aside bool, err error) {
	s.SampleCount = 1
	malformed := len(d.problems)
	count := 1.0 // as received, for the quarantine: SampleCount is clamped
	fail := func(field, msg string) { d.problems[fmt.Sprintf("samples[%d].%s", i, field)] = msg }
	if d.dec.PeekKind() != '{' {
		if err := d.dec.SkipValue(); err != nil {
			return s, false, err
		}
		d.problems[fmt.Sprintf("samples[%d]", i)] = "want an object"
		return s, false, nil
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return s, false, err
	}
	has := 0
	for d.dec.PeekKind() != '}' {
		nameTok, err := d.dec.ReadToken()
		if err != nil {
			return s, false, err
		}
		name := nameTok.String()
		tok, err := d.dec.ReadToken()
		if err != nil {
			return s, false, err
		}
		kind := tok.Kind()
		if kind == '{' || kind == '[' {
			// No sample field is an object or a list: skip the rest of it.
			if err := d.skipRest(); err != nil {
				return s, false, err
			}
		}
		if kind == 'n' {
			continue // null: absent
		}
		number := func(bit int, dst *float64) {
			if kind != '0' {
				fail(name, "want a number")
				return
			}
			if *dst, err = parseFinite(tok); err != nil {
				fail(name, err.Error())
				return
			}
			has |= bit
		}
		optional := func(dst **float64) {
			if kind != '0' {
				fail(name, "want a number or null")
				return
			}
			v, err := parseFinite(tok)
			if err != nil {
				fail(name, err.Error())
				return
			}
			*dst = &v
		}
		switch name {
		case "device_id":
			if kind != '"' {
				fail(name, "want a string")
				continue
			}
			s.DeviceID = tok.String()
			has |= hasDeviceID
			if s.DeviceID != "" && s.DeviceID != d.device {
				return s, false, errForbiddenDevice{index: i}
			}
		case "ts":
			if kind != '"' {
				fail(name, "want an RFC 3339 time string")
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, tok.String())
			if err != nil {
				fail(name, "want an RFC 3339 time with a UTC offset, e.g. 2026-02-15T08:00:05Z")
				continue
			}
			s.TS = ts
			has |= hasTS
		case "pv_power_w":
			number(hasPVPower, &s.PVPowerW)
		case "battery_power_w":
			number(hasBatteryPower, &s.BatteryPowerW)
		case "battery_soc_pct":
			number(hasSoC, &s.BatterySoCPct)
		case "load_power_w":
			number(hasLoad, &s.LoadPowerW)
		case "export_power_w":
			number(hasExport, &s.ExportPowerW)
		case "pv_daily_kwh":
			optional(&s.PVDailyKWh)
		case "battery_temp_c":
			optional(&s.BatteryTempC)
		case "sample_count":
			if kind != '0' {
				fail(name, "want a whole number")
				continue
			}
			n, err := parseFinite(tok)
			if err != nil || n != math.Trunc(n) || n > math.MaxInt32 {
				fail(name, "must be a whole number up to 2147483647")
				continue
			}
			// Below 1 is implausible, not malformed: it becomes 0 for the check.
			count, s.SampleCount = n, int32(max(n, 0))
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return s, false, err
	}

	for _, f := range requiredFields {
		if has&f.bit == 0 {
			if _, already := d.problems[fmt.Sprintf("samples[%d].%s", i, f.name)]; !already {
				fail(f.name, "required")
			}
		}
	}
	if has&hasDeviceID != 0 && strings.TrimSpace(s.DeviceID) == "" {
		fail("device_id", "must not be empty")
	}
	if len(d.problems) > malformed {
		return s, false, nil // the batch is refused anyway
	}
	problems := telemetry.Implausible(s, d.now)
	if problems == nil {
		return s, false, nil
	}
	return s, true, d.setAside(i, s, problems, count)
}

// setAside records sample i as implausible, keeping it as received.
func (d *ingestDecoder) setAside(i int, s telemetry.Sample, problems []telemetry.Problem, count float64) error {
	raw, err := json.Marshal(receivedSample{
		DeviceID: s.DeviceID, TS: s.TS.Format(time.RFC3339Nano), PVPowerW: s.PVPowerW, PVDailyKWh: s.PVDailyKWh,
		BatteryPowerW: s.BatteryPowerW, BatterySoCPct: s.BatterySoCPct, BatteryTempC: s.BatteryTempC,
		LoadPowerW: s.LoadPowerW, ExportPowerW: s.ExportPowerW, SampleCount: count,
	})
	if err != nil {
		return fmt.Errorf("encode set-aside sample %d: %w", i, err)
	}
	b := &d.batch
	if b.problems == nil {
		b.problems = map[string]string{}
	}
	for _, p := range problems {
		b.problems[fmt.Sprintf("samples[%d].%s", i, p.Field)] = telemetry.ReasonDetail(p.Reason)
		b.reasons = append(b.reasons, p.Reason)
	}
	b.aside = append(b.aside, telemetry.SetAside{TS: s.TS, Problems: problems, Sample: raw})
	return nil
}

// receivedSample is a set-aside sample as the client sent it: its fields (unknown ones
// dropped), the time in the offset it came with, the sample_count before clamping.
// (Keeping the time's own text would cost the hot path an allocation per sample.)
type receivedSample struct {
	DeviceID      string   `json:"device_id"`
	TS            string   `json:"ts"`
	PVPowerW      float64  `json:"pv_power_w"`
	PVDailyKWh    *float64 `json:"pv_daily_kwh"`
	BatteryPowerW float64  `json:"battery_power_w"`
	BatterySoCPct float64  `json:"battery_soc_pct"`
	BatteryTempC  *float64 `json:"battery_temp_c"`
	LoadPowerW    float64  `json:"load_power_w"`
	ExportPowerW  float64  `json:"export_power_w"`
	SampleCount   float64  `json:"sample_count"`
}

// parseFinite reads a JSON number token as a float64, refusing what float64 cannot
// hold: the store relies on never seeing NaN or infinity. A -0 (Python prints an idle
// reading as -0.0) is kept as 0, so no answer ever shows -0.
func parseFinite(tok jsontext.Token) (float64, error) {
	v, err := strconv.ParseFloat(tok.String(), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, errors.New("must be a finite number within the range of a float64")
	}
	if v == 0 {
		return 0, nil
	}
	return v, nil
}

// skipRest skips to the end of the object or list whose opening token was just read.
func (d *ingestDecoder) skipRest() error {
	for depth := 1; depth > 0; {
		tok, err := d.dec.ReadToken()
		if err != nil {
			return err
		}
		switch tok.Kind() {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
	}
	return nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
