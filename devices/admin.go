package devices

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/db"
)

// Errors of the admin operations; each leaves the database as it was.
var (
	ErrInvalidID     = errors.New("invalid device id")
	ErrDeviceExists  = errors.New("device exists already")
	ErrUnknownDevice = errors.New("no such device")
	ErrUnknownToken  = errors.New("no such token")
	ErrBadInterval   = errors.New("invalid sample interval")
	ErrBadScope      = errors.New("invalid token scope")
)

// Device is one row of the devices table as the commands show it.
type Device struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// IntervalS is the seconds one sample stands for; nil: SAMPLE_INTERVAL_S.
	IntervalS    *int32     `json:"interval_s"`
	ActiveTokens int64      `json:"active_tokens"`
	NewestSample *time.Time `json:"newest_sample"`
}

// Token is what may be shown of a token: never the token, never its hash.
type Token struct {
	ID         int64      `json:"id"`
	DeviceID   string     `json:"device_id"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Scope      Scope      `json:"scope"`
}

// IssuedToken is a token just issued: Secret is shown once and never stored.
type IssuedToken struct {
	Token
	Secret string `json:"token"`
}

// Admin changes the devices and tokens tables.
type Admin struct {
	pool *pgxpool.Pool
}

// NewAdmin returns an Admin over pool.
func NewAdmin(pool *pgxpool.Pool) *Admin { return &Admin{pool: pool} }

// CheckInterval validates a device's sample interval: whole seconds from 1 s to 1 h,
// as SAMPLE_INTERVAL_S.
func CheckInterval(d time.Duration) error {
	if d < time.Second || d > time.Hour || d%time.Second != 0 {
		return fmt.Errorf("%w %s: want whole seconds from 1s to 1h", ErrBadInterval, d)
	}
	return nil
}

// AddDevice creates a device and its first token in one transaction. interval 0: the
// device uses SAMPLE_INTERVAL_S. A device removed before may be added again.
func (a *Admin) AddDevice(ctx context.Context, id, name string, interval time.Duration, label string) (Device, IssuedToken, error) {
	if err := config.CheckDeviceID(id); err != nil {
		return Device{}, IssuedToken{}, fmt.Errorf("%w %q: %w", ErrInvalidID, id, err)
	}
	var intervalS *int32
	if interval != 0 {
		if err := CheckInterval(interval); err != nil {
			return Device{}, IssuedToken{}, err
		}
		s := int32(interval / time.Second)
		intervalS = &s
	}
	var dev Device
	var tok IssuedToken
	err := inTx(ctx, a.pool, func(q *db.Queries) error {
		row, err := q.AddDevice(ctx, db.AddDeviceParams{ID: id, Name: name, IntervalS: intervalS})
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s (add a token to it with `sungrow token add %s`)", ErrDeviceExists, id, id)
		}
		if err != nil {
			return fmt.Errorf("add device %s: %w", id, err)
		}
		dev = Device{ID: row.ID, Name: row.Name, CreatedAt: row.CreatedAt, IntervalS: row.IntervalS, ActiveTokens: 1}
		// The device's first token is the edge's: it must be able to post samples.
		tok, err = addToken(ctx, q, id, label, ReadWrite)
		return err
	})
	if err != nil {
		return Device{}, IssuedToken{}, err
	}
	return dev, tok, nil
}

// ListDevices returns the active devices by id.
func (a *Admin) ListDevices(ctx context.Context) ([]Device, error) {
	rows, err := db.New(a.pool).ListDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	list := make([]Device, 0, len(rows))
	for _, r := range rows {
		d := Device{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, IntervalS: r.IntervalS, ActiveTokens: r.ActiveTokens}
		if ts, ok := r.NewestSample.(time.Time); ok {
			d.NewestSample = &ts
		}
		list = append(list, d)
	}
	return list, nil
}

// Removal is what RemoveDevice did.
type Removal struct {
	DeviceID       string `json:"device_id"`
	RevokedTokens  int64  `json:"revoked_tokens"`
	DeletedSamples int64  `json:"deleted_samples"`
	// Oldest and Newest span the deleted samples (nil when none were).
	Oldest *time.Time `json:"oldest_deleted,omitempty"`
	Newest *time.Time `json:"newest_deleted,omitempty"`
}

// RemoveDevice revokes every token of an active device and marks it removed, in one
// transaction; with deleteData its samples go too, else they stay.
func (a *Admin) RemoveDevice(ctx context.Context, id string, deleteData bool) (Removal, error) {
	res := Removal{DeviceID: id}
	err := inTx(ctx, a.pool, func(q *db.Queries) error {
		n, err := q.RemoveDevice(ctx, id)
		if err != nil {
			return fmt.Errorf("remove device %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %q (see `sungrow device list`)", ErrUnknownDevice, id)
		}
		if res.RevokedTokens, err = q.RevokeDeviceTokens(ctx, id); err != nil {
			return fmt.Errorf("revoke the tokens of %s: %w", id, err)
		}
		if !deleteData {
			return nil
		}
		del, err := q.DeleteDeviceSamples(ctx, id)
		if err != nil {
			return fmt.Errorf("delete the samples of %s: %w", id, err)
		}
		// On plain PostgreSQL the device's rollup buckets go with its samples; on both
		// backends the money kept for its days.
		hasRollup, err := q.RollupPresent(ctx)
		if err != nil {
			return fmt.Errorf("look for the rollup: %w", err)
		}
		if hasRollup {
			if err := q.DeleteDeviceRollup(ctx, id); err != nil {
				return fmt.Errorf("delete the rollup of %s: %w", id, err)
			}
			if err := q.DeleteDeviceRollupDays(ctx, id); err != nil {
				return fmt.Errorf("delete the rollup's days of %s: %w", id, err)
			}
		}
		if err := q.DeleteDeviceMoney(ctx, id); err != nil {
			return fmt.Errorf("delete the money kept for %s: %w", id, err)
		}
		res.DeletedSamples = del.Deleted
		if del.Deleted > 0 {
			res.Oldest, res.Newest = &del.Oldest, &del.Newest
		}
		return nil
	})
	if err != nil {
		return Removal{}, err
	}
	return res, nil
}

// AddToken issues another token of the given scope for an active device.
func (a *Admin) AddToken(ctx context.Context, deviceID, label string, scope Scope) (IssuedToken, error) {
	if scope != ReadWrite && scope != ReadOnly {
		return IssuedToken{}, fmt.Errorf("%w %q: want %s or %s", ErrBadScope, scope, ReadWrite, ReadOnly)
	}
	var tok IssuedToken
	err := inTx(ctx, a.pool, func(q *db.Queries) (err error) {
		tok, err = addToken(ctx, q, deviceID, label, scope)
		return err
	})
	return tok, err
}

// inTx runs fn in a transaction, committed only when fn succeeds: a refused operation
// then leaves no trace, not even a bump of the tokens' version (see sql/00006).
func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(*db.Queries) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(db.New(tx)) })
}

func addToken(ctx context.Context, q *db.Queries, deviceID, label string, scope Scope) (IssuedToken, error) {
	secret, hash, err := NewToken()
	if err != nil {
		return IssuedToken{}, err
	}
	row, err := q.AddToken(ctx, db.AddTokenParams{DeviceID: deviceID, Sha256: hash[:], Label: label,
		ReadOnly: scope == ReadOnly})
	if errors.Is(err, pgx.ErrNoRows) {
		return IssuedToken{}, fmt.Errorf("%w: %q (see `sungrow device list`)", ErrUnknownDevice, deviceID)
	}
	if err != nil {
		return IssuedToken{}, fmt.Errorf("add a token to %s: %w", deviceID, err)
	}
	return IssuedToken{Token: Token{ID: row.ID, DeviceID: row.DeviceID, Label: row.Label, CreatedAt: row.CreatedAt,
		Scope: scopeOf(row.ReadOnly)}, Secret: secret}, nil
}

// ListTokens returns the table's tokens (revoked ones too) of one device, or of every
// device when deviceID is empty. A device the table does not know is an error.
func (a *Admin) ListTokens(ctx context.Context, deviceID string) ([]Token, error) {
	q := db.New(a.pool)
	var filter *string
	if deviceID != "" {
		filter = &deviceID
	}
	rows, err := q.ListTokens(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	list := make([]Token, 0, len(rows))
	for _, r := range rows {
		list = append(list, Token{ID: r.ID, DeviceID: r.DeviceID, Label: r.Label, CreatedAt: r.CreatedAt,
			LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt, Scope: scopeOf(r.ReadOnly)})
	}
	return list, nil
}

// DeviceDefined says whether the table defines a device (a removed one too): then its
// DEVICE_TOKENS entries are ignored.
func (a *Admin) DeviceDefined(ctx context.Context, id string) (bool, error) {
	ok, err := db.New(a.pool).DeviceKnown(ctx, id)
	if err != nil {
		return false, fmt.Errorf("look up device %s: %w", id, err)
	}
	return ok, nil
}

// RevokeToken revokes a token on every instance (within a poll). Revoking a revoked
// token changes nothing; wasRevoked then says so.
func (a *Admin) RevokeToken(ctx context.Context, id int64) (tok Token, wasRevoked bool, err error) {
	var row db.RevokeTokenRow
	err = inTx(ctx, a.pool, func(q *db.Queries) (err error) {
		row, err = q.RevokeToken(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %d (see `sungrow token list`)", ErrUnknownToken, id)
		}
		if err != nil {
			return fmt.Errorf("revoke token %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return Token{}, false, err
	}
	return Token{ID: row.ID, DeviceID: row.DeviceID, Label: row.Label, CreatedAt: row.CreatedAt,
		LastUsedAt: row.LastUsedAt, RevokedAt: row.RevokedAt, Scope: scopeOf(row.ReadOnly)}, row.WasRevoked, nil
}
