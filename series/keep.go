package series

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MoneyKeeper keeps the money of days that are over in sungrow_money_daily, on the
// primary and in the background, so that series reads (which may run on a read-only
// replica) find their days priced and write nothing: after each device's ingest (it
// is a listener of stored batches) and, for every device, after the prices changed.
type MoneyKeeper struct {
	svc    *Service
	every  time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	dirty   map[string]struct{} // devices with samples stored since their last keeping
	version int64               // the prices version every device was last kept under
}

// NewMoneyKeeper returns a keeper that runs a round every `every` on svc, which must
// read and write the primary.
func NewMoneyKeeper(svc *Service, every time.Duration, logger *slog.Logger) *MoneyKeeper {
	return &MoneyKeeper{svc: svc, every: every, logger: logger, dirty: map[string]struct{}{}}
}

// Stored marks the device for the next round; it returns at once (ingest calls it).
func (k *MoneyKeeper) Stored(deviceID string, _ time.Time) {
	k.mu.Lock()
	k.dirty[deviceID] = struct{}{}
	k.mu.Unlock()
}

// Run keeps money at once, then every round, until ctx ends. A failed round is logged
// and its devices are tried again the next.
func (k *MoneyKeeper) Run(ctx context.Context) {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		if _, err := k.Keep(ctx); err != nil && ctx.Err() == nil {
			k.logger.Warn("money keeper: round failed; tried again next round", "err", err, "every", k.every.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Keep runs one round: every device when the prices changed since the last round (or
// on the first), else the devices stored since. It returns how many days it kept.
func (k *MoneyKeeper) Keep(ctx context.Context) (int, error) {
	if !k.svc.keepsMoney() {
		return 0, nil // nothing is kept off the stored days
	}
	version, err := k.svc.q.PricesVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the prices version: %w", err)
	}
	k.mu.Lock()
	devices := make([]string, 0, len(k.dirty))
	for d := range k.dirty {
		devices = append(devices, d)
	}
	clear(k.dirty)
	all := version != k.version
	k.mu.Unlock()
	if all {
		every, err := k.svc.devicesWithDays(ctx)
		if err != nil {
			k.requeue(devices)
			return 0, fmt.Errorf("list the devices with days: %w", err)
		}
		devices = every
	}
	kept := 0
	for i, d := range devices {
		n, err := k.svc.KeepMoney(ctx, d)
		if err != nil {
			k.requeue(devices[i:])
			return kept, err
		}
		kept += n
	}
	if all {
		k.mu.Lock()
		k.version = version
		k.mu.Unlock()
	}
	if kept > 0 {
		k.logger.Debug("money keeper: kept", "days", kept, "devices", len(devices))
	}
	return kept, nil
}

// requeue marks devices for the next round again.
func (k *MoneyKeeper) requeue(devices []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range devices {
		k.dirty[d] = struct{}{}
	}
}

// devicesWithDays lists every device with stored days on this path.
func (s *Service) devicesWithDays(ctx context.Context) ([]string, error) {
	if s.path == PathRollup {
		return s.q.DevicesWithDaysRollup(ctx)
	}
	return s.q.DevicesWithDays(ctx)
}
