package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/telemetry"
)

// Conn is a pool or connection that can also begin a transaction.
type Conn interface {
	db.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Store keeps the rules, their states and their deliveries.
type Store struct {
	conn Conn
	q    *db.Queries
	now  func() time.Time
}

// NewStore returns a Store over conn; now stamps new rules.
func NewStore(conn Conn, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{conn: conn, q: db.New(conn), now: now}
}

// ErrNotFound is a rule id that does not exist.
var ErrNotFound = errors.New("no such alert rule")

// Add checks and stores a rule. Nothing is written when the input is invalid.
func (s *Store) Add(ctx context.Context, n NewRule) (Rule, error) {
	r, err := n.Rule()
	if err != nil {
		return Rule{}, err
	}
	row, err := s.q.AddAlertRule(ctx, db.AddAlertRuleParams{DeviceID: r.DeviceID, Kind: r.Kind, AfterS: r.AfterS,
		Above: r.Above, Below: r.Below, RepeatS: r.RepeatS, Webhooks: r.Webhooks, Secret: r.Secret,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond)})
	if err != nil {
		return Rule{}, fmt.Errorf("add alert rule: %w", err)
	}
	return ruleOf(row), nil
}

// Get returns one rule, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Rule, error) {
	row, err := s.q.GetAlertRule(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("get alert rule %d: %w", id, err)
	}
	return ruleOf(row), nil
}

// Remove deletes a rule with its states and deliveries (pending ones are not sent).
func (s *Store) Remove(ctx context.Context, id int64) error {
	n, err := s.q.RemoveAlertRule(ctx, id)
	if err != nil {
		return fmt.Errorf("remove alert rule %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return nil
}

func ruleOf(row db.SungrowAlertRule) Rule {
	return Rule{ID: row.ID, DeviceID: row.DeviceID, Kind: row.Kind, AfterS: row.AfterS, Above: row.Above,
		Below: row.Below, RepeatS: row.RepeatS, Webhooks: row.Webhooks, Secret: row.Secret, Created: row.CreatedAt}
}

// Status is a rule as `alert list` and GET /v1/alerts show it: the rule, its state for
// each device it has judged, and its latest deliveries.
type Status struct {
	Rule
	Webhooks   []string      `json:"webhooks"` // redacted: scheme://host/…
	Signed     bool          `json:"signed"`
	Condition  string        `json:"condition"`
	Devices    []DeviceState `json:"devices"`
	Deliveries []Delivery    `json:"deliveries"`
}

// DeviceState is a rule's state for one device.
type DeviceState struct {
	DeviceID   string     `json:"device_id"`
	State      string     `json:"state"` // firing, pending (soc_low waiting for --after) or ok
	Since      *time.Time `json:"since"`
	LastSentAt *time.Time `json:"last_sent_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	Summary    string     `json:"summary"`
}

// Delivery is one notification to one webhook.
type Delivery struct {
	ID          int64      `json:"id"`
	DeviceID    string     `json:"device_id"`
	Webhook     int32      `json:"webhook"` // 1-based, in the rule's webhooks
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	Attempts    int32      `json:"attempts"`
	DeliveredAt *time.Time `json:"delivered_at"`
	AbandonedAt *time.Time `json:"abandoned_at"`
	LastStatus  *int32     `json:"last_status"`
	LastError   string     `json:"last_error"`
}

// recentDeliveries is how many of each rule's deliveries a status shows.
const recentDeliveries = 5

// List returns every rule with its states and latest deliveries; with a device, only
// the rules that watch it (its own and those for every device), and only its states
// and deliveries.
func (s *Store) List(ctx context.Context, device string) ([]Status, error) {
	rules, err := s.q.ListAlertRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	states, err := s.q.ListAlertStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("list alert states: %w", err)
	}
	deliveries, err := s.q.RecentAlertDeliveries(ctx, db.RecentAlertDeliveriesParams{DeviceID: device, PerRule: recentDeliveries})
	if err != nil {
		return nil, fmt.Errorf("list alert deliveries: %w", err)
	}
	out := []Status{}
	index := map[int64]int{}
	for _, row := range rules {
		if device != "" && row.DeviceID != "" && row.DeviceID != device {
			continue
		}
		r := ruleOf(row)
		index[r.ID] = len(out)
		out = append(out, Status{Rule: r, Webhooks: r.Redacted(), Signed: r.Secret != "", Condition: r.Condition(),
			Devices: []DeviceState{}, Deliveries: []Delivery{}})
	}
	for _, st := range states {
		i, ok := index[st.RuleID]
		if !ok || (device != "" && st.DeviceID != device) {
			continue
		}
		ds := DeviceState{DeviceID: st.DeviceID, State: "ok", LastSentAt: st.LastSentAt, ResolvedAt: st.ResolvedAt, Summary: st.Summary}
		switch {
		case st.FiringSince != nil:
			ds.State, ds.Since = StateFiring, st.FiringSince
		case st.PendingSince != nil:
			ds.State, ds.Since = "pending", st.PendingSince
		}
		out[i].Devices = append(out[i].Devices, ds)
	}
	for _, d := range deliveries {
		if i, ok := index[d.RuleID]; ok {
			out[i].Deliveries = append(out[i].Deliveries, Delivery{ID: d.ID, DeviceID: d.DeviceID, Webhook: d.Webhook,
				State: d.State, CreatedAt: d.CreatedAt, Attempts: d.Attempts, DeliveredAt: d.DeliveredAt,
				AbandonedAt: d.AbandonedAt, LastStatus: d.LastStatus, LastError: d.LastError})
		}
	}
	for i := range out {
		sort.Slice(out[i].Devices, func(a, b int) bool { return out[i].Devices[a].DeviceID < out[i].Devices[b].DeviceID })
	}
	return out, nil
}

// Firing returns, per kind of rule, the devices it fires for.
func (s *Store) Firing(ctx context.Context) (map[string][]string, error) {
	rows, err := s.q.FiringAlerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list firing alerts: %w", err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.Kind] = append(out[r.Kind], r.DeviceID)
	}
	return out, nil
}

type stateKey struct {
	rule   int64
	device string
}

// check judges every rule for every device it watches, in one transaction under the
// check lock, writing the states that changed and queuing the notifications, which
// it returns.
func (s *Store) check(ctx context.Context, now time.Time) ([]Notification, error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert check: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	q := s.q.WithTx(tx)
	if err := q.LockAlertCheck(ctx); err != nil {
		return nil, fmt.Errorf("alert check: lock: %w", err)
	}
	rows, err := q.ListAlertRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert check: rules: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	stateRows, err := q.ListAlertStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert check: states: %w", err)
	}
	asides, err := q.ClockSetAsides(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert check: clock set-asides: %w", err)
	}
	// The devices to judge: each rule's own, and for rules on every device each
	// device with samples or clock set-asides, and those a rule already has a state for.
	watched := map[string]bool{}
	everyDevice := false
	for _, r := range rows {
		if r.DeviceID == "" {
			everyDevice = true
		} else {
			watched[r.DeviceID] = true
		}
	}
	var all []string
	if everyDevice {
		ids, err := q.DeviceIDs(ctx)
		if err != nil {
			return nil, fmt.Errorf("alert check: devices: %w", err)
		}
		all = ids
		for _, a := range asides {
			all = append(all, a.DeviceID)
		}
	}
	removedRows, err := q.RemovedDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert check: removed devices: %w", err)
	}
	removed := map[string]bool{}
	for _, d := range removedRows {
		removed[d] = true
	}
	kept := all[:0]
	for _, d := range all {
		if !removed[d] { // a rule for every device stops watching a removed one
			kept = append(kept, d)
			watched[d] = true
		}
	}
	all = kept
	ids := make([]string, 0, len(watched))
	for d := range watched {
		ids = append(ids, d)
	}
	sort.Strings(ids)
	latest, err := telemetry.NewStore(tx).LatestOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("alert check: %w", err)
	}
	obs := map[string]Observation{}
	for i := range latest {
		obs[latest[i].DeviceID] = Observation{Newest: &latest[i]}
	}
	for _, a := range asides {
		o := obs[a.DeviceID]
		t := a.Newest
		o.ClockAside = &t
		obs[a.DeviceID] = o
	}
	for d := range removed {
		o := obs[d]
		o.Removed = true
		obs[d] = o
	}
	states := map[stateKey]State{}
	devicesOf := map[int64][]string{}
	for _, st := range stateRows {
		states[stateKey{st.RuleID, st.DeviceID}] = State{PendingSince: st.PendingSince, FiringSince: st.FiringSince,
			LastSentAt: st.LastSentAt, ResolvedAt: st.ResolvedAt, Summary: st.Summary}
		devicesOf[st.RuleID] = append(devicesOf[st.RuleID], st.DeviceID)
	}

	var sent []Notification
	for _, row := range rows {
		r := ruleOf(row)
		scope := []string{r.DeviceID}
		if r.DeviceID == "" {
			scope = dedupe(append(append([]string{}, all...), devicesOf[r.ID]...))
		}
		for _, device := range scope {
			key := stateKey{r.ID, device}
			old := states[key]
			next, n := Evaluate(r, device, obs[device], old, now)
			if !sameState(old, next) {
				if err := q.UpsertAlertState(ctx, db.UpsertAlertStateParams{RuleID: r.ID, DeviceID: device,
					PendingSince: next.PendingSince, FiringSince: next.FiringSince, LastSentAt: next.LastSentAt,
					ResolvedAt: next.ResolvedAt, Summary: next.Summary}); err != nil {
					return nil, fmt.Errorf("alert check: save state of rule %d for %q: %w", r.ID, device, err)
				}
			}
			if n == nil {
				continue
			}
			body, err := json.Marshal(n)
			if err != nil {
				return nil, fmt.Errorf("alert check: encode notification: %w", err)
			}
			for i := range r.Webhooks {
				if err := q.InsertAlertDelivery(ctx, db.InsertAlertDeliveryParams{RuleID: r.ID, DeviceID: device,
					Webhook: int32(i + 1), State: n.State, Body: string(body), CreatedAt: now}); err != nil {
					return nil, fmt.Errorf("alert check: queue notification of rule %d: %w", r.ID, err)
				}
			}
			sent = append(sent, *n)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("alert check: commit: %w", err)
	}
	return sent, nil
}

func dedupe(ids []string) []string {
	sort.Strings(ids)
	out := ids[:0]
	for i, id := range ids {
		if i == 0 || id != ids[i-1] {
			out = append(out, id)
		}
	}
	return out
}

func sameState(a, b State) bool {
	return sameTime(a.PendingSince, b.PendingSince) && sameTime(a.FiringSince, b.FiringSince) &&
		sameTime(a.LastSentAt, b.LastSentAt) && sameTime(a.ResolvedAt, b.ResolvedAt) && a.Summary == b.Summary
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
