// Package collect reads a Sungrow hybrid inverter over Modbus and delivers every
// reading to a sungrow server: the register map is one table (registers.go), decoding
// is a pure function of the words read, and the connection (Inverter), the queue on
// disk (Spool) and the upload (Uploader) are small types that Run wires together.
//
// Libraries: github.com/simonvetter/modbus is maintained, pure Go (so the binary stays
// static for a Raspberry Pi), speaks TCP and RTU, checks unit id and function code of
// each answer, and has a server, which the emulated inverter uses. The spool is
// go.etcd.io/bbolt: pure Go, one file, every transaction fsynced, and a cursor in key
// order is the oldest-first queue we need; SQLite (modernc.org/sqlite) would do the same
// with a much larger binary and SQL for a job that needs none.
package collect

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// Reader reads the inverter once; *Inverter is the real one.
type Reader interface {
	Read(ctx context.Context) (Reading, error)
	Close()
}

// Config is what Run wires together.
type Config struct {
	Inverter Reader
	Spool    *Spool
	Uploader *Uploader
	// DeviceID is the device the readings are stored under; empty: the token's own,
	// asked from GET /v1/me before the first upload.
	DeviceID    string
	Interval    time.Duration
	UploadEvery time.Duration
	Batch       int
	// NotBefore is the build time: a clock before it is not set yet (a Pi without a
	// real-time clock before NTP), and readings stamped with it would be wrong.
	NotBefore time.Time
	Now       func() time.Time
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Backoff bounds of reconnecting and of retrying uploads.
const (
	minBackoff = time.Second
	maxBackoff = 60 * time.Second
	// logEvery is how often a lasting condition (clock not set, token refused,
	// inverter unreachable) is logged again.
	logEvery = time.Minute
)

// Run reads every Interval into the spool and uploads the spool every UploadEvery
// until ctx ends; then it finishes the upload in flight and returns nil.
func Run(ctx context.Context, cfg Config) error {
	uploadNow := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		uploadLoop(ctx, cfg, uploadNow)
	}()
	readLoop(ctx, cfg, uploadNow)
	wg.Wait()
	cfg.Inverter.Close()
	return nil
}

func readLoop(ctx context.Context, cfg Config, uploaded chan<- struct{}) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	var (
		backoff     = minBackoff
		nextAttempt time.Time
		lastWarned  = map[string]time.Time{}
		readsSince  int // readings since the last upload nudge
	)
	// warn logs a lasting condition once per logEvery.
	warn := func(kind, msg string, args ...any) {
		now := cfg.Now()
		if now.Sub(lastWarned[kind]) >= logEvery || lastWarned[kind].After(now) {
			lastWarned[kind] = now
			cfg.Logger.Warn(msg, args...)
		}
	}
	for {
		now := cfg.Now()
		switch {
		case now.Before(cfg.NotBefore):
			warn("clock", "the clock is before this binary was built, so it is not set yet; not reading until it is",
				"now", now.UTC(), "built", cfg.NotBefore.UTC())
		case now.Before(nextAttempt):
			// reconnect backoff: the inverter failed recently
		default:
			r, err := cfg.Inverter.Read(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				cfg.Metrics.ReadFailed(ReadReason(err))
				warn("read", "reading the inverter failed; retrying", "err", err.Error(), "retry_in", backoff.String())
				nextAttempt = now.Add(backoff)
				backoff = min(2*backoff, maxBackoff)
				break
			}
			if backoff > minBackoff {
				cfg.Logger.Info("reading the inverter again")
				lastWarned["read"] = time.Time{}
			}
			backoff, nextAttempt = minBackoff, time.Time{}
			dropped, err := cfg.Spool.Put(r.Sample(cfg.DeviceID, now))
			if err != nil {
				cfg.Metrics.ReadFailed("spool")
				cfg.Logger.Error("the reading could not be spooled", "err", err.Error())
				break
			}
			cfg.Metrics.ReadTaken()
			if dropped > 0 {
				cfg.Metrics.Dropped("spool_max", dropped)
				warn("spool_max", "the spool is full; dropped the oldest readings", "dropped", dropped,
					"spool_max", cfg.Spool.max)
			}
			readsSince++
			if readsSince >= cfg.Batch {
				readsSince = 0
				select { // a full batch need not wait for --upload-every
				case uploaded <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func uploadLoop(ctx context.Context, cfg Config, nudge <-chan struct{}) {
	t := time.NewTicker(cfg.UploadEvery)
	defer t.Stop()
	device := cfg.DeviceID
	var lastRefusedLog time.Time
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
		for ctx.Err() == nil && cfg.Spool.Depth() > 0 {
			// The upload in flight finishes even when ctx ends (SIGTERM): its readings
			// are removed from the spool only after the 200, so nothing is sent twice
			// needlessly or left half-done.
			upCtx := context.WithoutCancel(ctx)
			err := uploadBatch(upCtx, cfg, &device)
			var refused *RefusedError
			var retry *RetryError
			switch {
			case err == nil:
				backoff = minBackoff
				lastRefusedLog = time.Time{}
				continue
			case errors.As(err, &refused):
				if cfg.Now().Sub(lastRefusedLog) >= logEvery {
					lastRefusedLog = cfg.Now()
					cfg.Logger.Error(refused.Error()+"; readings stay in the spool until a right token is given",
						"spooled", cfg.Spool.Depth())
				}
			case errors.As(err, &retry):
				wait := jitter(backoff)
				if retry.After > 0 {
					wait = retry.After
				}
				backoff = min(2*backoff, maxBackoff)
				cfg.Logger.Warn("upload failed; retrying", "status", retry.Status, "err", retry.Err.Error(),
					"retry_in", wait.Round(time.Millisecond).String(), "spooled", cfg.Spool.Depth())
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				continue
			default:
				cfg.Logger.Error("upload failed", "err", err.Error())
			}
			break // wait for the next tick
		}
	}
}

// uploadBatch delivers the oldest batch, learning the device first if needed.
func uploadBatch(ctx context.Context, cfg Config, device *string) error {
	if *device == "" {
		d, err := cfg.Uploader.Me(ctx)
		if err != nil {
			return err
		}
		*device = d
		cfg.Logger.Info("uploading as the token's device", "device_id", d)
	}
	batch, err := cfg.Spool.Oldest(cfg.Batch)
	if err != nil {
		return err
	}
	done, deliverErr := cfg.Uploader.Deliver(ctx, *device, batch)
	if err := cfg.Spool.Remove(done); err != nil {
		return err
	}
	if len(done) > 0 {
		cfg.Logger.Debug("uploaded", "readings", len(done), "spooled", cfg.Spool.Depth())
	}
	return deliverErr
}

// jitter spreads retries of many collectors over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// Sample is the reading as POST /v1/ingest takes it, stamped with the collector's
// UTC time to the millisecond.
func (r Reading) Sample(device string, at time.Time) telemetry.Sample {
	daily, temp := r.PVDailyKWh, r.BatteryTempC
	return telemetry.Sample{
		DeviceID: device, TS: at.UTC().Truncate(time.Millisecond),
		PVPowerW: r.PVPowerW, PVDailyKWh: &daily,
		BatteryPowerW: r.BatteryPowerW, BatterySoCPct: r.BatterySoCPct, BatteryTempC: &temp,
		LoadPowerW: r.LoadPowerW, ExportPowerW: r.ExportPowerW, SampleCount: 1,
	}
}
