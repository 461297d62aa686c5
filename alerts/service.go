package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/telemetry"
)

// Options configures a Service.
type Options struct {
	Conn       Conn
	Now        func() time.Time // nil: time.Now
	CheckEvery time.Duration    // ALERT_CHECK_S
	Client     *http.Client     // nil: a client without a timeout of its own (each post has AnswerTimeout)
	Logger     *slog.Logger
	Metrics    *metrics.Metrics // nil: nothing counted
	// Problems, when set, is told after every check which devices have an alert
	// firing (the Home Assistant problem sensor). It must return at once.
	Problems func(firing map[string]bool)
}

// Service checks the rules and delivers their notifications: serve runs one per
// instance. Checks are serialized across instances by the database, and each
// delivery is claimed by one instance, so running several sends nothing twice.
type Service struct {
	opts  Options
	store *Store
	kick  chan struct{}
}

// NewService returns a Service; Run starts it.
func NewService(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 10 * time.Second
	}
	return &Service{opts: opts, store: NewStore(opts.Conn, opts.Now), kick: make(chan struct{}, 1)}
}

// Kick asks for a check now, without waiting for it.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default: // one is asked for already
	}
}

// SetAside hears the implausible samples ingest set aside and asks for a check at once
// when one was set aside for its time (the clock rule).
func (s *Service) SetAside(aside []telemetry.SetAside) {
	for _, a := range aside {
		for _, p := range a.Problems {
			if p.Reason == telemetry.ReasonClockBehind || p.Reason == telemetry.ReasonClockAhead {
				s.Kick()
				return
			}
		}
	}
}

// Run checks every CheckEvery and when kicked, and delivers what is due, until ctx
// ends. A failing check or delivery is logged and tried again at the next turn.
func (s *Service) Run(ctx context.Context) {
	check := time.NewTicker(s.opts.CheckEvery)
	defer check.Stop()
	deliver := time.NewTimer(0)
	defer deliver.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			s.checkAndLog(ctx)
		case <-s.kick:
			s.checkAndLog(ctx)
		case <-deliver.C:
		}
		deliver.Reset(s.deliverAndLog(ctx))
	}
}

func (s *Service) checkAndLog(ctx context.Context) {
	if _, err := s.Check(ctx); err != nil && ctx.Err() == nil {
		s.opts.Logger.ErrorContext(ctx, "alert check failed", "err", err)
	}
}

// deliverAndLog delivers what is due and returns how long to wait for the next.
func (s *Service) deliverAndLog(ctx context.Context) time.Duration {
	wait, err := s.Deliver(ctx)
	if err != nil && ctx.Err() == nil {
		s.opts.Logger.ErrorContext(ctx, "alert delivery failed", "err", err)
	}
	// Another instance's check may queue what only a later look finds.
	return min(wait, s.opts.CheckEvery)
}

// Check judges every rule once, queues the notifications that it causes, and updates
// sungrow_alerts_firing and the problem sensors. It returns the notifications.
func (s *Service) Check(ctx context.Context) ([]Notification, error) {
	sent, err := s.store.check(ctx, s.opts.Now())
	if err != nil {
		return nil, err
	}
	for _, n := range sent {
		s.opts.Logger.InfoContext(ctx, "alert "+n.State, "alert_id", n.AlertID, "rule", n.Rule,
			"device_id", n.DeviceID, "summary", n.Summary)
	}
	firing, err := s.store.Firing(ctx)
	if err != nil {
		return sent, err
	}
	if m := s.opts.Metrics; m != nil {
		for _, kind := range Kinds {
			m.AlertsFiring.WithLabelValues(kind).Set(float64(len(firing[kind])))
		}
	}
	if s.opts.Problems != nil {
		devices := map[string]bool{}
		for _, list := range firing {
			for _, d := range list {
				devices[d] = true
			}
		}
		s.opts.Problems(devices)
	}
	return sent, nil
}

// Deliver sends every due delivery this instance can claim, each rule's in order, and
// returns how long until the next one waiting is due (at most a minute).
func (s *Service) Deliver(ctx context.Context) (time.Duration, error) {
	q := db.New(s.opts.Conn)
	for {
		now := s.opts.Now()
		claimed, err := q.ClaimAlertDeliveries(ctx, db.ClaimAlertDeliveriesParams{Now: now, ClaimUntil: now.Add(claimFor)})
		if err != nil {
			return time.Minute, fmt.Errorf("claim alert deliveries: %w", err)
		}
		if len(claimed) == 0 {
			break
		}
		sort.Slice(claimed, func(a, b int) bool { return claimed[a].ID < claimed[b].ID })
		for _, d := range claimed {
			if err := s.send(ctx, q, d); err != nil {
				return time.Minute, err
			}
		}
	}
	next, err := q.NextAlertDelivery(ctx)
	if err != nil {
		return time.Minute, fmt.Errorf("next alert delivery: %w", err)
	}
	if len(next) == 0 {
		return time.Minute, nil
	}
	return min(max(next[0].Sub(s.opts.Now()), 0), time.Minute), nil
}

// send posts one claimed delivery and records the answer.
func (s *Service) send(ctx context.Context, q *db.Queries, d db.ClaimAlertDeliveriesRow) error {
	answer := post(ctx, s.opts.Client, d.Url, d.Secret, []byte(d.Body))
	now := s.opts.Now()
	// Never the URL or the secret: the ids say which webhook it was.
	log := []any{"delivery_id", d.ID, "alert_id", d.RuleID, "device_id", d.DeviceID, "webhook", d.Webhook,
		"state", d.State, "attempt", d.Attempts}
	var status *int32
	if answer.Status != 0 {
		st := int32(answer.Status)
		status = &st
	}
	if answer.OK() {
		if err := q.DeliverySucceeded(context.WithoutCancel(ctx), db.DeliverySucceededParams{ID: d.ID, At: now, Status: status}); err != nil {
			return fmt.Errorf("record alert delivery %d: %w", d.ID, err)
		}
		s.count("delivered")
		s.opts.Logger.DebugContext(ctx, "alert delivered", append(log, "status", answer.Status)...)
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down: the claim lapses and this or another instance sends it again.
		return ctx.Err()
	}
	retry := backoff(d.Attempts)
	abandon := now.Add(retry).Sub(d.CreatedAt) > RetryFor
	if err := q.DeliveryFailed(ctx, db.DeliveryFailedParams{ID: d.ID, NextAttemptAt: now.Add(retry), Status: status,
		Error: answer.String(), Abandon: abandon, At: now}); err != nil {
		return fmt.Errorf("record alert delivery %d: %w", d.ID, err)
	}
	if abandon {
		s.count("abandoned")
		s.opts.Logger.ErrorContext(ctx, "alert delivery abandoned after 24 h of failures", append(log, "answer", answer.String())...)
		return nil
	}
	s.count("failed")
	s.opts.Logger.WarnContext(ctx, "alert delivery failed, will retry", append(log, "answer", answer.String(), "retry_in", retry.String())...)
	return nil
}

func (s *Service) count(result string) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.AlertDeliveries.WithLabelValues(result).Inc()
	}
}
