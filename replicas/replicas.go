// Package replicas sends history reads to PostgreSQL streaming replicas
// (DATABASE_READ_URL) that are close enough behind the primary, and to the primary
// when none is: it checks each replica's lag every second, skips one that lags or is
// down, and retries on the primary a read a replica failed, so no read fails for a
// replica's sake. It is apart because both serve's wiring and its tests need the one
// Set, and nothing else in sungrow knows where a read runs.
package replicas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/db"
)

// State is what a replica is good for right now.
type State string

const (
	// Unknown: not checked yet; reads do not go there.
	Unknown State = "unknown"
	// Usable: within the lag bound; reads go there.
	Usable State = "ok"
	// Lagging: more than the lag bound behind; skipped until it catches up.
	Lagging State = "lagging"
	// Down: refuses connections or failed a read; skipped until a check reaches it.
	Down State = "down"
	// NotReplica: answers, but is not in recovery (a promoted standby, or a primary):
	// it does not follow this primary, so it is skipped.
	NotReplica State = "not a replica"
)

// Status is one replica as the last check (or a failed read) left it.
type Status struct {
	Name  string // replica1, replica2…: by position in DATABASE_READ_URL
	Addr  string // host:port, for the log only
	State State
	// Lag is how far its answers are behind the primary's; 0 when it has replayed all
	// the primary had written.
	Lag time.Duration
}

// Options configure a Set.
type Options struct {
	// URLs are the replicas (DATABASE_READ_URL), in order; each may carry pool_*
	// settings like DATABASE_URL.
	URLs []string
	// MaxLag (READ_MAX_LAG_S) is the most a replica may be behind and still be read.
	MaxLag time.Duration
	// Every is how often each replica's lag is checked; 0: every second.
	Every  time.Duration
	Logger *slog.Logger
	// Lag hears each replica's lag after each check (NaN while it is down); Read hears
	// where each read went ("primary" or "replica"). Either may be nil.
	Lag  func(replica string, seconds float64)
	Read func(target string)
	// AfterConnect runs on each new replica connection, as on the primary's (search_path).
	AfterConnect func(context.Context, *pgx.Conn) error
}

// Set is the primary and its replicas; its DBTX sends each read where it may go.
type Set struct {
	primary  *pgxpool.Pool
	replicas []*replica
	opts     Options
	next     atomic.Uint64 // round robin over the usable replicas
}

type replica struct {
	name, addr string
	pool       *pgxpool.Pool

	mu    sync.Mutex
	state State
	lag   time.Duration
	// caughtUp is when the primary's WAL ended where the replica had replayed to at
	// the last check that found it current: its answers are at least that fresh.
	caughtUp time.Time
	// behindSince is when checks began to find it behind, never current, with no
	// commit replayed since it started.
	behindSince time.Time
}

// connectTimeout bounds how long a read or a check waits for a replica that does not
// answer, when its URL sets no connect_timeout: a down replica costs at most this
// once, then it is skipped until a check reaches it.
const connectTimeout = time.Second

// Open prepares the replicas' pools (they connect on first use, so a replica that is
// down at start does not stop serve). Run must run for any read to go to a replica.
func Open(primary *pgxpool.Pool, opts Options) (*Set, error) {
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{primary: primary, opts: opts}
	for i, raw := range opts.URLs {
		name := "replica" + strconv.Itoa(i+1)
		cfg, err := pgxpool.ParseConfig(raw)
		if err != nil {
			s.Close()
			// pgx's error may quote the URL, password and all.
			return nil, fmt.Errorf("DATABASE_READ_URL: entry %d is not a valid PostgreSQL URL", i+1)
		}
		if u, err := url.Parse(raw); err == nil && u.Query().Get("connect_timeout") == "" {
			cfg.ConnConfig.ConnectTimeout = connectTimeout
		}
		cfg.AfterConnect = opts.AfterConnect
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open the pool of %s: %w", name, err)
		}
		addr := fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
		s.replicas = append(s.replicas, &replica{name: name, addr: addr, pool: pool, state: Unknown})
	}
	return s, nil
}

// Close closes the replicas' pools (not the primary's).
func (s *Set) Close() {
	for _, r := range s.replicas {
		r.pool.Close()
	}
}

// Statuses lists every replica, in order.
func (s *Set) Statuses() []Status {
	out := make([]Status, len(s.replicas))
	for i, r := range s.replicas {
		r.mu.Lock()
		out[i] = Status{Name: r.name, Addr: r.addr, State: r.state, Lag: r.lag}
		r.mu.Unlock()
	}
	return out
}

// Run checks every replica now and then every Options.Every until ctx ends.
func (s *Set) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		s.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// unknownLSN stands for the primary's WAL position when the primary did not answer.
const unknownLSN = "0/0"

// Check measures every replica's lag once, all at once, each within Options.Every.
func (s *Set) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Every)
	defer cancel()
	// Where the primary's WAL ends before the replicas are asked: a replica that has
	// replayed that far is current, however long ago its last commit was.
	asked := time.Now()
	lsn, err := db.New(s.primary).PrimaryWALPosition(ctx)
	if err != nil {
		lsn = unknownLSN // only the replicas' own received WAL tells
	}
	var wg sync.WaitGroup
	for _, r := range s.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.check(ctx, r, lsn, asked)
		}()
	}
	wg.Wait()
}

// check asks r how far it is behind primaryLSN, where the primary's WAL ended at asked.
func (s *Set) check(ctx context.Context, r *replica, primaryLSN string, asked time.Time) {
	row, err := db.New(r.pool).ReplicaLag(ctx, primaryLSN)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.state
	switch {
	case err != nil:
		r.state, r.lag = Down, 0
		if was != Down {
			s.opts.Logger.Warn("read replica down: reads skip it until it answers", "replica", r.name, "addr", r.addr, "err", err)
		}
		s.lag(r.name, nan)
		return
	case !row.InRecovery:
		r.state, r.lag = NotReplica, 0
	case row.BehindPrimaryBytes == 0 && row.UnreplayedBytes == 0:
		r.state, r.lag, r.behindSince = Usable, 0, time.Time{}
		if primaryLSN != unknownLSN {
			r.caughtUp = asked
		}
	default:
		// Behind: its answers are as old as the last commit it replayed, and no older
		// than the last check that found it current (a primary that writes seldom
		// committed long before the WAL the replica is about to replay). Without
		// either since it started, as old as the first check that found it behind.
		lag := time.Duration(row.SinceReplayS * float64(time.Second))
		switch {
		case !r.caughtUp.IsZero() && (row.SinceReplayS < 0 || now.Sub(r.caughtUp) < lag):
			lag = now.Sub(r.caughtUp)
		case row.SinceReplayS < 0:
			if r.behindSince.IsZero() {
				r.behindSince = now
			}
			lag = now.Sub(r.behindSince)
		}
		r.lag, r.state = max(lag, 0), Usable
		if r.lag > s.opts.MaxLag {
			r.state = Lagging
		}
	}
	if r.state != was {
		s.opts.Logger.Info("read replica state", "replica", r.name, "addr", r.addr, "state", string(r.state),
			"was", string(was), "lag_s", r.lag.Seconds(), "max_lag_s", s.opts.MaxLag.Seconds())
	}
	s.lag(r.name, r.lag.Seconds())
}

var nan = func() float64 { var z float64; return z / z }()

func (s *Set) lag(name string, seconds float64) {
	if s.opts.Lag != nil {
		s.opts.Lag(name, seconds)
	}
}

func (s *Set) read(target string) {
	if s.opts.Read != nil {
		s.opts.Read(target)
	}
}

// pick returns a usable replica, taking turns, or nil: then the read goes to the
// primary.
func (s *Set) pick() *replica {
	n := len(s.replicas)
	start := int(s.next.Add(1))
	for i := range n {
		r := s.replicas[(start+i)%n]
		r.mu.Lock()
		ok := r.state == Usable
		r.mu.Unlock()
		if ok {
			return r
		}
	}
	return nil
}

// failed marks r down after a read found it unreachable, so the next reads skip it
// at once rather than each waiting for it; the next check that reaches it brings it
// back.
func (s *Set) failed(r *replica, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != Down {
		s.opts.Logger.Warn("read replica failed a read: reads skip it until a check reaches it", "replica", r.name,
			"addr", r.addr, "err", err)
	}
	r.state = Down
}

// retryOnPrimary says whether a read that failed on a replica should run again on the
// primary (the replica, not the read, is at fault), and whether the replica is to be
// skipped from now on.
func retryOnPrimary(ctx context.Context, err error) (retry, down bool) {
	if ctx.Err() != nil {
		return false, false // the caller gave up: not the replica's fault
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true, true // no answer at all: connection refused, reset, timed out
	}
	switch pgErr.Code[:2] {
	case "08", "57", "53": // connection exception, operator intervention (shutdown), resources
		return true, true
	case "40": // canceled for a conflict with recovery: the next read may well work
		return true, false
	}
	return pgErr.Code == "25006", false // read-only transaction: never meant for a replica
}

// DBTX is the Set as a db.DBTX for sqlc's queries: each query goes to a usable replica
// or, with none, to the primary; Exec (a write) always goes to the primary.
func (s *Set) DBTX() db.DBTX { return router{s} }

type router struct{ s *Set }

func (r router) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.s.read("primary")
	return r.s.primary.Exec(ctx, sql, args...)
}

func (r router) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rep := r.s.pick()
	if rep == nil {
		r.s.read("primary")
		return r.s.primary.Query(ctx, sql, args...)
	}
	rows, err := rep.pool.Query(ctx, sql, args...)
	if err != nil {
		return r.s.fallBack(ctx, rep, err, sql, args)
	}
	return &replicaRows{Rows: rows, s: r.s, rep: rep, ctx: ctx, sql: sql, args: args}, nil
}

func (r router) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := r.Query(ctx, sql, args...)
	return row{rows: rows, err: err}
}

// fallBack runs on the primary a read that failed on rep, when the replica was at
// fault; else it returns the replica's error.
func (s *Set) fallBack(ctx context.Context, rep *replica, err error, sql string, args []any) (pgx.Rows, error) {
	retry, down := retryOnPrimary(ctx, err)
	if down {
		s.failed(rep, err)
	}
	if !retry {
		s.read("replica")
		return nil, err
	}
	s.read("primary")
	return s.primary.Query(ctx, sql, args...)
}

// replicaRows are a replica's rows that, when the replica fails before the first row
// (pgx reports a server's error there, not from Query), are replaced by the primary's:
// nothing was handed to the caller yet, so the read runs again unseen.
type replicaRows struct {
	pgx.Rows
	s       *Set
	rep     *replica
	ctx     context.Context
	sql     string
	args    []any
	started bool // a row was read, or the read was settled
}

func (r *replicaRows) Next() bool {
	if r.started {
		return r.Rows.Next()
	}
	r.started = true
	if r.Rows.Next() {
		r.s.read("replica")
		return true
	}
	err := r.Rows.Err()
	if err == nil {
		r.s.read("replica")
		return false
	}
	r.Rows.Close()
	rows, ferr := r.s.fallBack(r.ctx, r.rep, err, r.sql, r.args)
	if ferr != nil {
		r.Rows = errRows{Rows: r.Rows, err: ferr}
		return false
	}
	r.Rows = rows
	return r.Rows.Next()
}

// errRows are closed rows whose Err is err.
type errRows struct {
	pgx.Rows
	err error
}

func (e errRows) Next() bool { return false }
func (e errRows) Err() error { return e.err }

// row is pgx.Row over Rows, as pgx's own QueryRow is.
type row struct {
	rows pgx.Rows
	err  error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
