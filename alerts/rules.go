// Package alerts tells an owner when something is wrong: rules (a device gone quiet,
// a wrong clock, a hot battery, a low state of charge) stored in the database, their
// evaluation in serve, and their delivery as signed JSON webhooks that are retried,
// kept in order and survive restarts. It is a package because rules, evaluation and
// delivery are one capability that serve, the commands and the API all use.
package alerts

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/sungrow/sungrow/config"
)

// Kinds of rule.
const (
	Offline     = "offline"      // no sample stored for After
	Clock       = "clock"        // a sample was set aside for its time
	BatteryTemp = "battery_temp" // the newest battery_temp_c above Above or below Below
	SoCLow      = "soc_low"      // the newest battery_soc_pct below Below for After
)

// Kinds lists every kind of rule, in the order the metrics show them.
var Kinds = []string{Offline, Clock, BatteryTemp, SoCLow}

// Defaults and bounds of the rule flags.
const (
	DefaultAfter  = 15 * time.Minute
	MinOffline    = 10 * time.Second
	DefaultRepeat = 24 * time.Hour
	// maxSpan keeps durations within the int32 seconds the table stores, and sane.
	maxSpan = 365 * 24 * time.Hour
)

// Rule is one stored alert rule.
type Rule struct {
	ID       int64     `json:"id"`
	DeviceID string    `json:"device_id"` // "": every device
	Kind     string    `json:"rule"`
	AfterS   int32     `json:"after_s"`
	Above    *float64  `json:"above"`
	Below    *float64  `json:"below"`
	RepeatS  int32     `json:"repeat_s"`
	Created  time.Time `json:"created_at"`
	// Webhooks and Secret are secrets: never logged, never in an answer (see
	// Redacted), so they are kept out of JSON.
	Webhooks []string `json:"-"`
	Secret   string   `json:"-"`
}

// After is how long the condition must last (offline, soc_low).
func (r Rule) After() time.Duration { return time.Duration(r.AfterS) * time.Second }

// Repeat is the time between reminders; 0: none.
func (r Rule) Repeat() time.Duration { return time.Duration(r.RepeatS) * time.Second }

// Redacted shows each webhook as scheme://host/… : enough to tell them apart, without
// the path or query that carries the secret (an ntfy topic, a Home Assistant webhook
// id).
func (r Rule) Redacted() []string {
	out := make([]string, len(r.Webhooks))
	for i, w := range r.Webhooks {
		out[i] = RedactURL(w)
	}
	return out
}

// RedactURL is a webhook URL without user, path and query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Condition describes the rule's condition in words, as the commands print it.
func (r Rule) Condition() string {
	switch r.Kind {
	case Offline:
		return fmt.Sprintf("no sample for %s", r.After())
	case Clock:
		return "a sample set aside for its time"
	case BatteryTemp:
		var parts []string
		if r.Above != nil {
			parts = append(parts, fmt.Sprintf("above %g °C", *r.Above))
		}
		if r.Below != nil {
			parts = append(parts, fmt.Sprintf("below %g °C", *r.Below))
		}
		return "battery temperature " + strings.Join(parts, " or ")
	case SoCLow:
		return fmt.Sprintf("state of charge below %g %% for %s", deref(r.Below), r.After())
	}
	return r.Kind
}

func deref(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}

// NewRule is what `sungrow alert add` was given; nil fields were not.
type NewRule struct {
	DeviceID string
	All      bool
	Kind     string
	After    *time.Duration
	Above    *float64
	Below    *float64
	Repeat   *time.Duration
	Webhooks []string
	Secret   *string
}

// ErrInvalid marks a rule refused for its input; nothing was written.
var ErrInvalid = errors.New("invalid alert rule")

func invalid(flag, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, flag, fmt.Sprintf(format, args...))
}

// Rule checks the input and returns the rule to store, with its defaults applied.
// Errors name the flag at fault and never repeat a webhook URL or the secret.
func (n NewRule) Rule() (Rule, error) {
	var r Rule
	switch {
	case n.All && n.DeviceID != "":
		return r, invalid("--device", "give either --device or --all, not both")
	case !n.All && n.DeviceID == "":
		return r, invalid("--device", "required (or --all for every device)")
	case !n.All:
		if err := config.CheckDeviceID(n.DeviceID); err != nil {
			return r, invalid("--device", "%v", err)
		}
		r.DeviceID = n.DeviceID
	}
	r.Kind = n.Kind
	switch n.Kind {
	case Offline:
		after, err := span("--after", n.After, DefaultAfter, MinOffline)
		if err != nil {
			return r, err
		}
		r.AfterS = after
		if err := refuse(n.Above, "--above", n.Kind); err != nil {
			return r, err
		}
		if err := refuse(n.Below, "--below", n.Kind); err != nil {
			return r, err
		}
	case Clock:
		if n.After != nil {
			return r, invalid("--after", "not used by rule clock (it fires on the first such sample)")
		}
		if err := refuse(n.Above, "--above", n.Kind); err != nil {
			return r, err
		}
		if err := refuse(n.Below, "--below", n.Kind); err != nil {
			return r, err
		}
	case BatteryTemp:
		if n.After != nil {
			return r, invalid("--after", "not used by rule battery_temp (it looks at the newest sample)")
		}
		if n.Above == nil && n.Below == nil {
			return r, invalid("--above", "rule battery_temp needs --above C, --below C or both")
		}
		if err := celsius("--above", n.Above); err != nil {
			return r, err
		}
		if err := celsius("--below", n.Below); err != nil {
			return r, err
		}
		if n.Above != nil && n.Below != nil && *n.Below >= *n.Above {
			return r, invalid("--below", "must be below --above, or the rule would always fire")
		}
		r.Above, r.Below = n.Above, n.Below
	case SoCLow:
		after, err := span("--after", n.After, DefaultAfter, 0)
		if err != nil {
			return r, err
		}
		r.AfterS = after
		if err := refuse(n.Above, "--above", n.Kind); err != nil {
			return r, err
		}
		if n.Below == nil {
			return r, invalid("--below", "rule soc_low needs --below P (percent)")
		}
		if math.IsNaN(*n.Below) || *n.Below <= 0 || *n.Below > 100 {
			return r, invalid("--below", "want a percentage above 0 and at most 100")
		}
		r.Below = n.Below
	case "":
		return r, invalid("--rule", "required: one of %s", strings.Join(Kinds, ", "))
	default:
		return r, invalid("--rule", "%q is not one of %s", n.Kind, strings.Join(Kinds, ", "))
	}
	repeat, err := span("--repeat", n.Repeat, DefaultRepeat, 0)
	if err != nil {
		return r, err
	}
	if repeat != 0 && repeat < 60 {
		return r, invalid("--repeat", "want 0 (no reminders) or at least 1m")
	}
	r.RepeatS = repeat
	if len(n.Webhooks) == 0 {
		return r, invalid("--webhook", "at least one is required")
	}
	for i, w := range n.Webhooks {
		if err := checkWebhook(w); err != nil {
			return r, invalid("--webhook", "#%d %v (the URL is not shown: it is a secret)", i+1, err)
		}
	}
	r.Webhooks = n.Webhooks
	if n.Secret != nil {
		if *n.Secret == "" {
			return r, invalid("--secret", "may not be empty (leave it out to send unsigned notifications)")
		}
		r.Secret = *n.Secret
	}
	return r, nil
}

// span reads a duration flag in whole seconds, at least lo; nil: def.
func span(flag string, d *time.Duration, def, lo time.Duration) (int32, error) {
	v := def
	if d != nil {
		v = *d
	}
	switch {
	case v < 0:
		return 0, invalid(flag, "may not be negative")
	case v < lo:
		return 0, invalid(flag, "want at least %s", lo)
	case v > maxSpan:
		return 0, invalid(flag, "want at most %s", maxSpan)
	case v%time.Second != 0:
		return 0, invalid(flag, "want whole seconds")
	}
	return int32(v / time.Second), nil
}

func celsius(flag string, v *float64) error {
	if v != nil && (math.IsNaN(*v) || *v < -100 || *v > 200) {
		return invalid(flag, "want degrees Celsius from -100 to 200")
	}
	return nil
}

func refuse(v *float64, flag, kind string) error {
	if v != nil {
		return invalid(flag, "not used by rule %s", kind)
	}
	return nil
}

// checkWebhook says what is wrong with a webhook URL, without repeating it.
func checkWebhook(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must begin with http:// or https://")
	case u.Hostname() == "":
		return errors.New("has no host")
	}
	return nil
}
