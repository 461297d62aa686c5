package alerts

import (
	"fmt"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// Observation is what the database tells about one device at a check.
type Observation struct {
	Newest *telemetry.Sample // nil: no sample stored
	// ClockAside is the newest arrival of a sample set aside for its time; nil: none.
	ClockAside *time.Time
	// Removed: the device was removed (`sungrow device remove`); what fired resolves.
	Removed bool
}

// State is where a rule stands for one device.
type State struct {
	PendingSince *time.Time // soc_low: below the threshold since, not yet for --after
	FiringSince  *time.Time // nil: not firing
	LastSentAt   *time.Time // the last firing or reminder
	ResolvedAt   *time.Time
	Summary      string
}

// Firing reports whether the rule fires.
func (s State) Firing() bool { return s.FiringSince != nil }

// Notification is one message about a rule and a device, as its webhooks receive it.
type Notification struct {
	AlertID  int64          `json:"alert_id"`
	Rule     string         `json:"rule"`
	DeviceID string         `json:"device_id"`
	State    string         `json:"state"` // firing, resolved, reminder or test
	Since    time.Time      `json:"since"`
	At       time.Time      `json:"at"`
	Summary  string         `json:"summary"`
	Details  map[string]any `json:"details"`
	// Title and Message repeat the news in the fields Gotify's message endpoint reads,
	// so a Gotify application URL works as a webhook as it is.
	Title   string `json:"title"`
	Message string `json:"message"`
}

// withText fills Title and Message from the rest.
func (n Notification) withText() Notification {
	n.Title = fmt.Sprintf("sungrow %s: %s", n.State, n.Rule)
	if n.DeviceID != "" {
		n.Title += " on " + n.DeviceID
	}
	n.Message = n.Summary
	return n
}

// The states a notification can announce.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
	StateReminder = "reminder"
	StateTest     = "test"
)

// condition is a rule's verdict on one device.
type condition struct {
	known   bool // false: nothing to judge by (no sample, no temperature): keep the state
	holds   bool
	since   time.Time  // when the condition began
	pending *time.Time // soc_low's waiting start
	summary string
	details map[string]any
}

// Evaluate moves a rule's state for one device on to now and returns the notification
// the move sends, if any: one firing when the condition starts, one resolved when it
// ends, a reminder every Repeat while it holds.
func Evaluate(r Rule, device string, obs Observation, st State, now time.Time) (State, *Notification) {
	c := judge(r, device, obs, st, now)
	if !c.known {
		return st, nil
	}
	next := st
	next.PendingSince = c.pending
	note := func(state string, since time.Time, summary string) *Notification {
		n := Notification{AlertID: r.ID, Rule: r.Kind, DeviceID: device, State: state,
			Since: since.UTC(), At: now.UTC(), Summary: summary, Details: c.details}.withText()
		return &n
	}
	switch {
	case c.holds && !st.Firing():
		since := c.since
		next.FiringSince, next.LastSentAt, next.Summary = &since, &now, c.summary
		return next, note(StateFiring, since, c.summary)
	case c.holds:
		next.Summary = c.summary
		if r.RepeatS > 0 && st.LastSentAt != nil && now.Sub(*st.LastSentAt) >= r.Repeat() {
			next.LastSentAt = &now
			return next, note(StateReminder, *st.FiringSince, c.summary)
		}
		return next, nil
	case st.Firing():
		summary := resolvedSummary(r, device, obs)
		next.FiringSince, next.ResolvedAt, next.Summary = nil, &now, summary
		return next, note(StateResolved, *st.FiringSince, summary)
	}
	return next, nil
}

func judge(r Rule, device string, obs Observation, st State, now time.Time) condition {
	if obs.Removed {
		return condition{known: true}
	}
	switch r.Kind {
	case Offline:
		// Quiet time counts from the rule's creation at the earliest: a device that
		// never sent, or fell quiet before the rule existed, fires --after later, not
		// at once.
		last := r.Created
		var newest any
		if obs.Newest != nil {
			newest = obs.Newest.TS.UTC()
			if obs.Newest.TS.After(last) {
				last = obs.Newest.TS
			}
		}
		return condition{known: true, holds: now.Sub(last) >= r.After(), since: last,
			summary: fmt.Sprintf("%s: no sample since %s (%s or more)", device, last.UTC().Format(time.RFC3339), r.After()),
			details: map[string]any{"newest_sample": newest, "after_s": r.AfterS}}
	case Clock:
		// A clock fault lasts until a sample with a plausible time is stored after
		// the newest one set aside.
		if obs.ClockAside == nil {
			return condition{known: true}
		}
		aside := *obs.ClockAside
		holds := obs.Newest == nil || aside.After(obs.Newest.TS)
		return condition{known: true, holds: holds, since: aside,
			summary: fmt.Sprintf("%s: samples set aside for their time (check the inverter's clock), the newest arrived at %s",
				device, aside.UTC().Format(time.RFC3339)),
			details: map[string]any{"set_aside_at": aside.UTC()}}
	case BatteryTemp:
		if obs.Newest == nil || obs.Newest.BatteryTempC == nil {
			return condition{}
		}
		t := *obs.Newest.BatteryTempC
		c := condition{known: true, since: obs.Newest.TS,
			details: map[string]any{"battery_temp_c": t, "above": r.Above, "below": r.Below, "sample_ts": obs.Newest.TS.UTC()}}
		switch {
		case r.Above != nil && t > *r.Above:
			c.holds, c.summary = true, fmt.Sprintf("%s: battery at %g °C, above %g °C", device, t, *r.Above)
		case r.Below != nil && t < *r.Below:
			c.holds, c.summary = true, fmt.Sprintf("%s: battery at %g °C, below %g °C", device, t, *r.Below)
		}
		return c
	case SoCLow:
		if obs.Newest == nil || r.Below == nil {
			return condition{}
		}
		soc := *r.Below
		c := condition{known: true, details: map[string]any{"battery_soc_pct": obs.Newest.BatterySoCPct,
			"below": soc, "after_s": r.AfterS, "sample_ts": obs.Newest.TS.UTC()}}
		if obs.Newest.BatterySoCPct >= soc {
			return c
		}
		pending := obs.Newest.TS
		if st.PendingSince != nil {
			pending = *st.PendingSince
		}
		c.pending, c.since = &pending, pending
		c.holds = now.Sub(pending) >= r.After()
		c.summary = fmt.Sprintf("%s: battery at %g %%, below %g %% since %s", device,
			obs.Newest.BatterySoCPct, soc, pending.UTC().Format(time.RFC3339))
		return c
	}
	return condition{}
}

func resolvedSummary(r Rule, device string, obs Observation) string {
	if obs.Removed {
		return device + ": the device was removed"
	}
	switch r.Kind {
	case Offline:
		if obs.Newest == nil { // only a clock set back can get here
			return device + ": resolved"
		}
		return fmt.Sprintf("%s: samples again, the newest at %s", device, obs.Newest.TS.UTC().Format(time.RFC3339))
	case Clock:
		return fmt.Sprintf("%s: a sample with a plausible time was stored again", device)
	case BatteryTemp:
		return fmt.Sprintf("%s: battery at %g °C, back within limits", device, *obs.Newest.BatteryTempC)
	case SoCLow:
		return fmt.Sprintf("%s: battery at %g %% again", device, obs.Newest.BatterySoCPct)
	}
	return device + ": resolved"
}
