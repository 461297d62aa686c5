package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/replicas"
	"github.com/sungrow/sungrow/series"
)

// startReads opens the read replicas of DATABASE_READ_URL and checks their lag every
// second until stop. reads is where the history reads go: the replicas (each read on
// one within READ_MAX_LAG_S, else on the primary), or the primary's pool without any.
// ready lists each replica for /ready, without making the instance unready.
func startReads(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, m *metrics.Metrics, logger *slog.Logger) (
	reads db.DBTX, ready []httpapi.ReadyCheck, stop func(), err error) {
	if len(cfg.DatabaseReadURLs) == 0 {
		return pool, nil, func() {}, nil
	}
	lag, read := m.WatchReads()
	set, err := replicas.Open(pool, replicas.Options{URLs: cfg.DatabaseReadURLs, MaxLag: cfg.ReadMaxLag, Logger: logger,
		Lag: lag, Read: read, AfterConnect: pool.Config().AfterConnect})
	if err != nil {
		return nil, nil, nil, err
	}
	for _, s := range set.Statuses() {
		logger.Info("history reads: read replica", "replica", s.Name, "addr", s.Addr, "max_lag_s", cfg.ReadMaxLag.Seconds())
		ready = append(ready, httpapi.ReadyCheck{Name: s.Name, Optional: true, Check: replicaState(set, s.Name)})
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); set.Run(runCtx) }()
	return set.DBTX(), ready, func() { cancel(); <-done; set.Close() }, nil
}

// replicaState is /ready's view of one replica: nil while reads go there, else its
// state and lag (no address: /ready has no auth).
func replicaState(set *replicas.Set, name string) func(context.Context) error {
	return func(context.Context) error {
		for _, s := range set.Statuses() {
			if s.Name != name {
				continue
			}
			switch s.State {
			case replicas.Usable:
				return nil
			case replicas.Lagging:
				return fmt.Errorf("lagging %.1f s behind: reads go elsewhere", s.Lag.Seconds())
			default:
				return fmt.Errorf("%s: reads go elsewhere", s.State)
			}
		}
		return errors.New("unknown replica")
	}
}

// moneyKeepEvery is how often the keeper prices the days that are over of the devices
// stored since; reads price a day not kept yet themselves, so this bounds only how
// long they spend doing so.
const moneyKeepEvery = 30 * time.Second

// startMoneyKeeper keeps the money of past days on the primary in the background, so
// that series reads write nothing (they may run on a replica); stored hears ingest.
func startMoneyKeeper(ctx context.Context, primary *series.Service, logger *slog.Logger) (stored httpapi.StoredListener, stop func()) {
	k := series.NewMoneyKeeper(primary, moneyKeepEvery, logger)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); k.Run(runCtx) }()
	return k, func() { cancel(); <-done }
}
