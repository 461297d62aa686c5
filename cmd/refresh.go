package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/series"
)

func refreshCommand(e *env) *cobra.Command {
	var from, to string
	names := map[string]series.Aggregate{"hourly": series.Hourly, "daily": series.Daily, "monthly": series.Monthly}
	c := &cobra.Command{
		Use:   "refresh [hourly|daily|monthly ...]",
		Short: "Materialize the series aggregates (TimescaleDB), finest first",
		Long: `Refresh the continuous aggregates behind GET /v1/series over a window
(default: all time up to the start of each aggregate's current bucket, which is left to
real-time aggregation), hourly before daily before monthly since each is built on the
one before. Times are RFC 3339 or YYYY-MM-DD (midnight in the aggregates' zone).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var aggs []series.Aggregate
			for _, a := range args {
				agg, ok := names[strings.ToLower(a)]
				if !ok {
					return fmt.Errorf("unknown aggregate %q: want hourly, daily or monthly", a)
				}
				aggs = append(aggs, agg)
			}
			if len(aggs) == 0 {
				aggs = series.Aggregates
			}
			return refresh(cmd.Context(), e, from, to, aggs, time.Now(), false)
		},
	}
	c.Flags().StringVar(&from, "from", "", "start of the window (default: the beginning)")
	c.Flags().StringVar(&to, "to", "", "end of the window (default: the start of the current bucket)")
	return c
}

// refresh materializes aggs over the window; afterMigrate is `sungrow migrate` calling
// it for aggregates it rebuilt, which says so first and is silent on plain PostgreSQL.
func refresh(ctx context.Context, e *env, fromArg, toArg string, aggs []series.Aggregate, now time.Time, afterMigrate bool) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, info, err := series.Open(ctx, pool, cfg.TZ)
	if err != nil {
		return err
	}
	if info.AggregateZone == "" && afterMigrate {
		return nil
	}
	if afterMigrate {
		fmt.Fprintln(e.stdout, "materializing the rebuilt series aggregates from the raw samples")
	}
	if info.AggregateZone == "" {
		fmt.Fprintln(e.stdout, "no continuous aggregates in this database (plain PostgreSQL, or TimescaleDB without migration 2): series are computed from the raw samples, nothing to refresh")
		return nil
	}
	loc, err := aggregatesZone(info, cfg.TZ)
	if err != nil {
		return err
	}
	from, to, err := parseWindow(fromArg, toArg, loc)
	if err != nil {
		return err
	}
	// Hourly, daily, monthly, whatever order they were named in.
	slices.SortFunc(aggs, func(a, b series.Aggregate) int {
		return slices.Index(series.Aggregates, a) - slices.Index(series.Aggregates, b)
	})
	aggs = slices.Compact(aggs)

	// Take the late-data refreshers' lock, on the connection the refreshes run on, so
	// a refresh never overlaps one of serve's (TimescaleDB refuses overlapping ones).
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	defer conn.Release()
	unlock, err := lockRefreshes(ctx, e, conn)
	if err != nil {
		return err
	}
	defer unlock()

	horizon, err := series.RawHorizon(ctx, conn)
	if err != nil {
		return err
	}
	for _, agg := range aggs {
		// Whole buckets only, and never the current one: a materialized bucket stops
		// taking in samples through real-time aggregation until the next refresh. Never
		// the hours whose raw chunks retention dropped: they would be emptied.
		start, end := series.Window(agg, from, to, now, loc)
		start = series.AboveRawHorizon(agg, start, horizon)
		if !start.Before(end) {
			fmt.Fprintf(e.stdout, "%s: nothing to refresh between %s and %s\n", agg, start.Format(time.RFC3339), end.Format(time.RFC3339))
			continue
		}
		began := time.Now()
		if err := series.Refresh(ctx, conn, agg, start, end); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "refreshed %s from %s to %s in %s\n", agg, start.Format(time.RFC3339),
			end.Format(time.RFC3339), time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// lockRefreshes takes the late-data refreshers' lock on conn, waiting (and saying so)
// while a serve instance holds it, so a refresh never overlaps one of serve's
// (TimescaleDB refuses overlapping ones).
func lockRefreshes(ctx context.Context, e *env, conn *pgxpool.Conn) (unlock func(), err error) {
	unlock, ok, err := series.LockSession(ctx, conn, series.RefreshLockKey, false)
	if err == nil && !ok {
		fmt.Fprintln(e.stdout, "waiting for a sungrow serve instance to finish its refresh")
		unlock, _, err = series.LockSession(ctx, conn, series.RefreshLockKey, true)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh lock: %w", err)
	}
	return unlock, nil
}

// parseWindow reads the --from and --to of a window; either may be empty (zero).
func parseWindow(fromArg, toArg string, loc *time.Location) (from, to time.Time, err error) {
	if from, err = parseWindowTime("--from", fromArg, loc); err != nil {
		return from, to, err
	}
	to, err = parseWindowTime("--to", toArg, loc)
	return from, to, err
}

// parseWindowTime reads RFC 3339 or YYYY-MM-DD (midnight in loc); empty is zero.
func parseWindowTime(flag, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time or YYYY-MM-DD", flag, v)
}

// startSeries chooses where GET /v1/series reads from, says so once, and starts the
// late-data refresher and the aggregate audit (AGGREGATE_AUDIT_S) when there are
// aggregates; stop ends them and waits.
func startSeries(ctx context.Context, pool *pgxpool.Pool, cfg config.Config, interval series.IntervalFunc, logger *slog.Logger,
	m *metrics.Metrics) (
	*series.Service, httpapi.LateDataNotifier, func(), error) {
	svc, info, err := series.Open(ctx, pool, cfg.TZ)
	if err != nil {
		return nil, nil, nil, err
	}
	svc = svc.WithInterval(interval)
	zone := cfg.TZ.String()
	switch {
	case info.Path == series.PathRollup:
		start := time.Now()
		days, err := series.KeepDailyZone(ctx, pool, cfg.TZ)
		switch {
		case errors.Is(err, series.ErrDailyZoneBusy):
			logger.Warn("series: the rollup's days are kept in another zone than SUNGROW_TZ and could not be "+
				"rebuilt now; reads sum the quarter hours (right, slower) and the next start tries again",
				"zone", zone, "err", err)
		case err != nil:
			return nil, nil, nil, err
		}
		if days > 0 {
			logger.Info("series: rebuilt the rollup's days in SUNGROW_TZ, which changed since they were built",
				"zone", zone, "days", days, "took", time.Since(start).String())
		}
		logger.Info("series: served from the rollup's days and 15-minute buckets (plain PostgreSQL)", "zone", zone)
	case info.AggregateZone == "":
		logger.Info("series: computed from the raw samples (no continuous aggregates or rollup for this zone)", "zone", zone)
	case info.Path == series.PathAggregates:
		logger.Info("series: served from the continuous aggregates", "zone", zone)
	default:
		logger.Warn("series: the daily and monthly aggregates were built in another zone than SUNGROW_TZ; "+
			"they are not used, so no bucket is served in the wrong zone. To use them again, rebuild "+
			"them with `sungrow migrate down` and `sungrow migrate up` under the new SUNGROW_TZ, then `sungrow refresh`",
			"aggregate_zone", info.AggregateZone, "zone", zone, "path", string(info.Path))
	}
	// The audit runs on plain PostgreSQL too, checking the rollup (series.Levels).
	loc, err := aggregatesZone(info, cfg.TZ)
	if err != nil {
		return nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var late touchedAll
	if info.AggregateZone != "" {
		r := series.NewRefresher(pool, loc, cfg.LateRefreshDelay, logger, nil)
		wg.Go(func() { r.Run(runCtx) })
		late = append(late, r)
	}
	if cfg.AggregateAudit > 0 {
		a := series.NewAuditor(pool, loc, cfg.AggregateAudit, logger, series.AuditOptions{
			Repaired: func(agg string) { m.AggregateRepairs.WithLabelValues(agg).Inc() },
			Took:     func(d time.Duration) { m.AggregateAuditSeconds.Set(d.Seconds()) },
		})
		wg.Go(func() { a.Run(runCtx) })
		late = append(late, a)
		logger.Info("series: auditing the stored buckets against the levels below", "every", cfg.AggregateAudit.String())
	}
	var notifier httpapi.LateDataNotifier
	if len(late) > 0 {
		notifier = late
	}
	return svc, notifier, func() { cancel(); wg.Wait() }, nil
}

// aggregatesZone is the zone the aggregates were built in, which their buckets must be
// read in, or tz where there are none.
func aggregatesZone(info series.Info, tz *time.Location) (*time.Location, error) {
	if info.AggregateZone == "" {
		return tz, nil
	}
	loc, err := time.LoadLocation(info.AggregateZone)
	if err != nil {
		return nil, fmt.Errorf("zone %q the aggregates were built in: %w", info.AggregateZone, err)
	}
	return loc, nil
}

// touchedAll tells each of its notifiers (the late-data refresher, the audit) of every
// span ingest stored.
type touchedAll []httpapi.LateDataNotifier

func (t touchedAll) Touched(deviceID string, from, to time.Time) {
	for _, n := range t {
		n.Touched(deviceID, from, to)
	}
}
