package cmd

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/series"
	"github.com/sungrow/sungrow/storage"
)

func storageCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "storage",
		Short: "Show the disk used by the samples and the aggregates, compression, raw retention and the TimescaleDB jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return storageStatus(cmd.Context(), e, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(storagePolicyCommand(e))
	return c
}

func storagePolicyCommand(e *env) *cobra.Command {
	var p storage.Policy
	c := &cobra.Command{
		Use:   "policy",
		Short: "Change compression, raw retention and the chunk interval (TimescaleDB), idempotently",
		Long: `Change the storage jobs and print what changed. Intervals are whole hours, days,
weeks or years: 12h, 7d, 2w, 1y (365 days).

--compress-after D  compress chunks of sungrow_samples older than D (default 7d)
--raw-retention D   drop raw chunks older than D, daily, but only those every aggregate
                    has materialized and that lie below every refresh window plus a
                    margin; the aggregates are never dropped. "off" (the default) stops
                    dropping; dropped chunks stay dropped.
--chunk-interval D  the time range of new chunks (existing ones keep theirs)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p == (storage.Policy{}) {
				return fmt.Errorf("nothing to change: give --compress-after, --raw-retention or --chunk-interval")
			}
			return storagePolicy(cmd.Context(), e, p)
		},
	}
	c.Flags().StringVar(&p.CompressAfter, "compress-after", "", "compress chunks older than this, e.g. 7d")
	c.Flags().StringVar(&p.RawRetention, "raw-retention", "", `drop raw chunks older than this, e.g. 400d, or "off"`)
	c.Flags().StringVar(&p.ChunkInterval, "chunk-interval", "", "time range of new chunks, e.g. 7d")
	return c
}

func storagePolicy(ctx context.Context, e *env, p storage.Policy) error {
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
	changes, err := storage.Apply(ctx, pool, p, info.Path)
	for _, c := range changes {
		fmt.Fprintln(e.stdout, c)
	}
	return err
}

func storageStatus(ctx context.Context, e *env, asJSON bool) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := storage.Read(ctx, pool)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, st)
	}
	printStorage(e.stdout, st)
	return nil
}

func printStorage(out io.Writer, st storage.Status) {
	samples := st.Samples().Rows
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "relation\trows (est.)\ton disk\tbytes/sample\tchunks compressed\tratio\tmaterialized up to")
	for _, r := range st.Relations {
		perSample := "-"
		if samples > 0 {
			perSample = fmt.Sprintf("%.1f", float64(r.Bytes)/float64(samples))
		}
		chunks, ratio, upTo := "-", "-", "-"
		if st.Timescale {
			chunks = fmt.Sprintf("%d of %d", r.CompressedChunks, r.Chunks)
		}
		if r.AfterCompression > 0 {
			ratio = fmt.Sprintf("%.1f×", float64(r.BeforeCompression)/float64(r.AfterCompression))
		}
		if r.Aggregate {
			upTo = "never refreshed"
			if !r.MaterializedUpTo.IsZero() {
				upTo = r.MaterializedUpTo.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Rows, bytesText(r.Bytes), perSample, chunks, ratio, upTo)
	}
	_ = w.Flush()
	if !st.Timescale {
		fmt.Fprintln(out, "\nplain PostgreSQL: compression, raw retention and chunks need TimescaleDB")
		return
	}
	fmt.Fprintf(out, "\nchunk interval: %s\n", st.ChunkInterval)
	fmt.Fprintln(out, retentionText(st))
	fmt.Fprintln(out, "\njobs:")
	w = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "id\tjob\tevery\tlast run\tresult\tnext start\truns\tfailures\tconfig")
	for _, j := range st.Jobs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", j.ID, j.Name, j.Schedule, timeText(j.LastRun),
			orDash(j.LastStatus), timeText(j.NextStart), j.Runs, j.Failures, j.Config)
	}
	_ = w.Flush()
}

// retentionText is the raw retention in force and what it has dropped.
func retentionText(st storage.Status) string {
	dropped := "nothing dropped yet"
	if !st.RawHorizon.IsZero() {
		dropped = "samples before " + st.RawHorizon.UTC().Format(time.RFC3339) + " dropped (the aggregates keep them)"
	}
	if st.RawRetention == "" {
		if st.RawHorizon.IsZero() {
			return "raw retention: off, all samples kept"
		}
		return "raw retention: off; " + dropped
	}
	return "raw retention: " + st.RawRetention + ", " + dropped
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
