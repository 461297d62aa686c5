package alerts

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/telemetry"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

func sampleAt(ts time.Time, soc float64, temp *float64) *telemetry.Sample {
	return &telemetry.Sample{DeviceID: "inv", TS: ts, BatterySoCPct: soc, BatteryTempC: temp, SampleCount: 1}
}

// step is one check: what the database shows and what the check must send.
type step struct {
	at   time.Duration // after t0
	obs  Observation
	want string // the notification's state, "" for none
}

func TestEvaluate(t *testing.T) {
	aside := t0.Add(time.Second)
	tests := []struct {
		name  string
		rule  Rule
		steps []step
	}{
		{"battery_temp above 45 fires at 50 once and resolves at 30",
			Rule{Kind: BatteryTemp, Above: f(45), RepeatS: 0},
			[]step{
				{0, Observation{Newest: sampleAt(t0, 50, f(40))}, ""},
				{10 * time.Second, Observation{Newest: sampleAt(t0.Add(10*time.Second), 50, f(50))}, StateFiring},
				{20 * time.Second, Observation{Newest: sampleAt(t0.Add(20*time.Second), 50, f(51))}, ""},
				{25 * time.Second, Observation{Newest: sampleAt(t0.Add(25*time.Second), 50, nil)}, ""}, // no reading: unchanged
				{30 * time.Second, Observation{Newest: sampleAt(t0.Add(30*time.Second), 50, f(30))}, StateResolved},
				{40 * time.Second, Observation{Newest: sampleAt(t0.Add(40*time.Second), 50, f(30))}, ""},
			}},
		{"battery_temp below 0 fires in the cold",
			Rule{Kind: BatteryTemp, Below: f(0)},
			[]step{{0, Observation{Newest: sampleAt(t0, 50, f(-3))}, StateFiring}}},
		{"offline after 10s: once, then resolved by the next sample",
			Rule{Kind: Offline, AfterS: 10, Created: t0},
			[]step{
				{5 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, ""},
				{10 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, StateFiring},
				{20 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, ""},
				{21 * time.Second, Observation{Newest: sampleAt(t0.Add(21*time.Second), 50, nil)}, StateResolved},
			}},
		{"a removed device resolves what fired and fires no more",
			Rule{Kind: Offline, AfterS: 10, Created: t0},
			[]step{
				{10 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, StateFiring},
				{20 * time.Second, Observation{Newest: sampleAt(t0, 50, nil), Removed: true}, StateResolved},
				{90 * time.Second, Observation{Newest: sampleAt(t0, 50, nil), Removed: true}, ""},
			}},
		{"offline counts from the rule's creation for a device that never sent",
			Rule{Kind: Offline, AfterS: 60, Created: t0},
			[]step{{59 * time.Second, Observation{}, ""}, {60 * time.Second, Observation{}, StateFiring}}},
		{"offline reminds every --repeat while it holds",
			Rule{Kind: Offline, AfterS: 10, RepeatS: 60, Created: t0},
			[]step{
				{10 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, StateFiring},
				{69 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, ""},
				{70 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, StateReminder},
				{129 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, ""},
				{130 * time.Second, Observation{Newest: sampleAt(t0, 50, nil)}, StateReminder},
			}},
		{"soc_low below 20 for 1m",
			Rule{Kind: SoCLow, Below: f(20), AfterS: 60},
			[]step{
				{0, Observation{Newest: sampleAt(t0, 19, nil)}, ""},
				{59 * time.Second, Observation{Newest: sampleAt(t0.Add(59*time.Second), 15, nil)}, ""},
				{60 * time.Second, Observation{Newest: sampleAt(t0.Add(60*time.Second), 15, nil)}, StateFiring},
				{70 * time.Second, Observation{Newest: sampleAt(t0.Add(70*time.Second), 20, nil)}, StateResolved},
				{80 * time.Second, Observation{Newest: sampleAt(t0.Add(80*time.Second), 10, nil)}, ""}, // waits again
			}},
		{"clock fires on a set-aside sample and resolves on a stored one after it",
			Rule{Kind: Clock},
			[]step{
				{0, Observation{Newest: sampleAt(t0, 50, nil)}, ""},
				{2 * time.Second, Observation{Newest: sampleAt(t0, 50, nil), ClockAside: &aside}, StateFiring},
				{12 * time.Second, Observation{Newest: sampleAt(t0, 50, nil), ClockAside: &aside}, ""},
				{22 * time.Second, Observation{Newest: sampleAt(t0.Add(20*time.Second), 50, nil), ClockAside: &aside}, StateResolved},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var st State
			for i, s := range tt.steps {
				var n *Notification
				st, n = Evaluate(tt.rule, "inv", s.obs, st, t0.Add(s.at))
				got := ""
				if n != nil {
					got = n.State
					is.Equal(n.At, t0.Add(s.at))
					is.Equal(n.DeviceID, "inv")
				}
				if got != s.want {
					t.Fatalf("step %d (at +%s): sent %q, want %q", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestRuleInputRefusedNamingTheFlag(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	secret := "s3cret"
	empty := ""
	hook := []string{"https://ntfy.example/topic-abc"}
	tests := []struct {
		in   NewRule
		flag string
	}{
		{NewRule{Kind: Offline, Webhooks: hook}, "--device"},
		{NewRule{DeviceID: "a", All: true, Kind: Offline, Webhooks: hook}, "--device"},
		{NewRule{DeviceID: " a", Kind: Offline, Webhooks: hook}, "--device"},
		{NewRule{All: true, Webhooks: hook}, "--rule"},
		{NewRule{All: true, Kind: "hot", Webhooks: hook}, "--rule"},
		{NewRule{All: true, Kind: Offline, After: d(9 * time.Second), Webhooks: hook}, "--after"},
		{NewRule{All: true, Kind: Offline, After: d(1500 * time.Millisecond), Webhooks: hook}, "--after"},
		{NewRule{All: true, Kind: Offline, Above: f(3), Webhooks: hook}, "--above"},
		{NewRule{All: true, Kind: Clock, After: d(time.Minute), Webhooks: hook}, "--after"},
		{NewRule{All: true, Kind: BatteryTemp, Webhooks: hook}, "--above"},
		{NewRule{All: true, Kind: BatteryTemp, Above: f(400), Webhooks: hook}, "--above"},
		{NewRule{All: true, Kind: BatteryTemp, Above: f(40), Below: f(45), Webhooks: hook}, "--below"},
		{NewRule{All: true, Kind: SoCLow, Webhooks: hook}, "--below"},
		{NewRule{All: true, Kind: SoCLow, Below: f(120), Webhooks: hook}, "--below"},
		{NewRule{All: true, Kind: Offline, Repeat: d(-time.Hour), Webhooks: hook}, "--repeat"},
		{NewRule{All: true, Kind: Offline, Repeat: d(time.Second), Webhooks: hook}, "--repeat"},
		{NewRule{All: true, Kind: Offline}, "--webhook"},
		{NewRule{All: true, Kind: Offline, Webhooks: []string{"ftp://ntfy.example/topic-abc"}}, "--webhook"},
		{NewRule{All: true, Kind: Offline, Webhooks: []string{"https:///topic-abc"}}, "--webhook"},
		{NewRule{All: true, Kind: Offline, Webhooks: hook, Secret: &empty}, "--secret"},
	}
	for _, tt := range tests {
		_, err := tt.in.Rule()
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.flag+":") {
			t.Errorf("%+v: got %v, want an error naming %s", tt.in, err, tt.flag)
			continue
		}
		if strings.Contains(err.Error(), "topic-abc") {
			t.Errorf("%+v: the error repeats the webhook URL: %v", tt.in, err)
		}
	}
	is := is.New(t)
	r, err := NewRule{DeviceID: "inv", Kind: Offline, Webhooks: hook, Secret: &secret}.Rule()
	is.NoErr(err)
	is.Equal(r.AfterS, int32(15*60))    // default --after
	is.Equal(r.RepeatS, int32(24*3600)) // default --repeat
	is.Equal(r.Redacted(), []string{"https://ntfy.example/…"})
}

func TestSignatureVerifies(t *testing.T) {
	is := is.New(t)
	body := []byte(`{"alert_id":1}`)
	sig := Sign("k", body)
	is.True(strings.HasPrefix(sig, "sha256="))
	is.True(Verify("k", body, sig))
	is.True(!Verify("other", body, sig))
	is.True(!Verify("k", []byte(`{"alert_id":2}`), sig))
}

func TestBackoffDoublesUpToFiveMinutes(t *testing.T) {
	is := is.New(t)
	is.Equal(backoff(1), time.Second)
	is.Equal(backoff(2), 2*time.Second)
	is.Equal(backoff(4), 8*time.Second)
	is.Equal(backoff(9), 256*time.Second)
	is.Equal(backoff(10), 5*time.Minute)
	is.Equal(backoff(1000), 5*time.Minute)
}
