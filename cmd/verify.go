package cmd

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/series"
)

func verifyCommand(e *env) *cobra.Command {
	var from, to, device string
	var repair, asJSON bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check every stored level of series buckets against the level below; --repair mends what differs",
		Long: `Compare the stored series buckets with what they are computed from, bucket by
bucket: on TimescaleDB the monthly aggregate with the sum of its local days, the daily
one with the sum of its hours, the hourly one with the raw samples. sample_count and
every sum and maximum a bucket carries must agree (floats to 1e-9 relative). Prints each
bucket that differs and a summary, and exits 1 when any does.

Default window: all time for monthly and daily; for hourly against the raw samples the
last 35 days and every chunk not compressed yet (--from widens it, never below where raw
retention dropped the samples; the others are checked
from the start of --from's month, whole months at every level). Times are RFC 3339
or YYYY-MM-DD (midnight in the aggregates' zone). --repair recomputes exactly the
differing buckets (finest first), checks again, and exits 0 only if all agree now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verify(cmd, e, from, to, device, repair, asJSON, time.Now())
		},
	}
	c.Flags().StringVar(&from, "from", "", "start of the window (default: see above)")
	c.Flags().StringVar(&to, "to", "", "end of the window (default: now)")
	c.Flags().StringVar(&device, "device", "", "check this device only (default: every device)")
	c.Flags().BoolVar(&repair, "repair", false, "recompute the buckets that differ, then check again")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// checkedSpan is one level and the window it was checked over.
type checkedSpan struct {
	Aggregate string     `json:"aggregate"`
	From      *time.Time `json:"from"` // nil: from the beginning
	To        time.Time  `json:"to"`
}

func verify(cmd *cobra.Command, e *env, fromArg, toArg, device string, repair, asJSON bool, now time.Time) error {
	ctx := cmd.Context()
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
	loc, err := aggregatesZone(info, cfg.TZ)
	if err != nil {
		return err
	}
	from, to, err := parseWindow(fromArg, toArg, loc)
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = now
	}
	// One connection for everything: the locks a repair takes are the session's.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer conn.Release()
	levels, err := series.Levels(ctx, conn, loc)
	if err != nil {
		return err
	}
	if len(levels) == 0 {
		const nothing = "plain PostgreSQL: series are computed from the raw samples; nothing stored to verify"
		if asJSON {
			return printJSON(e.stdout, map[string]any{"checked": []checkedSpan{}, "differing": []series.Mismatch{}, "note": nothing})
		}
		fmt.Fprintln(e.stdout, nothing)
		return nil
	}
	rawFrom := from
	if rawFrom.IsZero() {
		if rawFrom, err = series.DefaultRawFrom(ctx, conn, now); err != nil {
			return err
		}
	} else {
		// Never the hours whose samples raw retention dropped: they would look extra,
		// and recomputing them from no samples would delete them.
		horizon, err := series.RawHorizon(ctx, conn)
		if err != nil {
			return err
		}
		rawFrom = series.AboveRawHorizon(series.Hourly, rawFrom, horizon)
	}
	// The stored levels are checked over whole months from --from's on: a month is
	// checked against its days, so all its days must be checked against their hours.
	if !from.IsZero() {
		from = series.Monthly.Floor(from, loc)
	}
	var checked []checkedSpan
	span := func(l series.Level) (time.Time, time.Time) {
		if r, ok := l.(series.RawSourced); ok && r.FromRawSamples() {
			return rawFrom, to
		}
		return from, to
	}
	for _, l := range levels {
		f, t := span(l)
		c := checkedSpan{Aggregate: l.Name(), To: t.In(loc)}
		if !f.IsZero() {
			f = f.In(loc)
			c.From = &f
		}
		checked = append(checked, c)
	}

	began := time.Now()
	differing, err := series.Check(ctx, conn, levels, device, span)
	if err != nil {
		return err
	}
	remaining := differing
	if repair && len(differing) > 0 {
		unlock, err := lockRefreshes(ctx, e, conn)
		if err != nil {
			return err
		}
		// Mend checks again level by level, finest first, and recomputes what differs
		// then (a bucket the late-data refresher mended meanwhile is left alone).
		differing, err = series.Mend(ctx, conn, levels, device, span)
		unlock()
		if err != nil {
			return err
		}
		if remaining, err = series.Check(ctx, conn, levels, device, span); err != nil {
			return err
		}
	}
	took := time.Since(began)

	if asJSON {
		out := map[string]any{"checked": checked, "differing": nonNil(differing), "seconds": took.Seconds()}
		if repair {
			out["remaining"] = nonNil(remaining)
		}
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printVerify(e.stdout, checked, differing, remaining, repair, took)
	}
	if len(remaining) > 0 {
		return fmt.Errorf("%d series buckets differ from the level below", len(remaining))
	}
	return nil
}

func printVerify(w io.Writer, checked []checkedSpan, differing, remaining []series.Mismatch, repair bool, took time.Duration) {
	for _, m := range differing {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.Level, m.DeviceID, m.Bucket.Format(time.RFC3339), m.What())
	}
	if repair {
		for _, m := range remaining {
			fmt.Fprintf(w, "still differs: %s\t%s\t%s\t%s\n", m.Level, m.DeviceID, m.Bucket.Format(time.RFC3339), m.What())
		}
	}
	for _, c := range checked {
		from := "the beginning"
		if c.From != nil {
			from = c.From.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "checked %s from %s to %s\n", c.Aggregate, from, c.To.Format(time.RFC3339))
	}
	switch {
	case len(differing) == 0:
		fmt.Fprintf(w, "all buckets agree with the level below (%s)\n", took.Round(time.Millisecond))
	case !repair:
		fmt.Fprintf(w, "%d buckets differ from the level below (%s); `sungrow verify --repair` recomputes them\n",
			len(differing), took.Round(time.Millisecond))
	case len(remaining) == 0:
		fmt.Fprintf(w, "%d buckets differed and were recomputed; all agree now (%s)\n", len(differing), took.Round(time.Millisecond))
	default:
		fmt.Fprintf(w, "%d buckets differed and were recomputed; %d still differ (%s)\n", len(differing), len(remaining), took.Round(time.Millisecond))
	}
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(ms []series.Mismatch) []series.Mismatch {
	if ms == nil {
		return []series.Mismatch{}
	}
	return ms
}
