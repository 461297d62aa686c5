package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sungrow/sungrow/db"
)

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// pingEvery: a connection silent this long is pinged, so one that died without
	// a word (a cut network) is noticed in seconds rather than at TCP keepalive's pace.
	pingEvery   = 30 * time.Second
	pingTimeout = 5 * time.Second
	dialTimeout = 10 * time.Second
)

// Listen is the PostgreSQL subscription: LISTEN sungrow_stored on a connection of its
// own (cfg, outside the pool, so it never takes a connection from requests), redialled
// with backoff whenever it drops.
func Listen(cfg *pgx.ConnConfig, logger *slog.Logger) Subscription {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &listener{cfg: cfg, logger: logger}
}

type listener struct {
	cfg    *pgx.ConnConfig
	logger *slog.Logger
	warn   throttle
}

func (l *listener) Run(ctx context.Context, notice func(string), synced func()) {
	backoff := minBackoff
	lost := false
	for {
		err := l.session(ctx, notice, func() {
			if lost {
				l.logger.Info("stream: subscription restored; reading every streamed device again")
			}
			lost, backoff = false, minBackoff
			synced()
		})
		if ctx.Err() != nil {
			return
		}
		lost = true
		l.warn.warn(l.logger, "stream: subscription lost; other instances' samples wait until it is back",
			"err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session listens on one connection until it fails or ctx ends.
func (l *listener) session(ctx context.Context, notice func(string), synced func()) error {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := pgx.ConnectConfig(dctx, l.cfg.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if err := db.New(conn).ListenStored(ctx); err != nil {
		return err
	}
	synced()
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			notice(n.Payload)
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			// Silence: a deadline interrupts the wait without closing the connection.
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// Poll is the subscription where no connection can be held for LISTEN (a pool of one
// connection): every interval it has the hub read each streamed device's newest
// sample from the database.
func Poll(every time.Duration) Subscription { return poll(every) }

type poll time.Duration

func (p poll) Run(ctx context.Context, _ func(string), synced func()) {
	t := time.NewTicker(time.Duration(p))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			synced()
		}
	}
}

// Notify is the hub's Publish over PostgreSQL: NOTIFY through conn (the pool).
func Notify(conn db.DBTX) func(context.Context, []string) error {
	q := db.New(conn)
	return func(ctx context.Context, payloads []string) error {
		if err := q.NotifyStored(ctx, payloads); err != nil {
			return fmt.Errorf("notify %d devices: %w", len(payloads), err)
		}
		return nil
	}
}
