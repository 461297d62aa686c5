package cmd

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/telemetry"
)

func quarantineCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "quarantine",
		Short: "List or purge the implausible samples ingest set aside",
		Long: `Ingest sets aside well-formed but implausible samples (a ts before 2000-01-02 or
more than 24 h ahead, a battery_soc_pct outside 0-100, a sample_count below 1) instead
of refusing their batch. These commands show them and delete them.`,
	}
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [DEVICE]",
		Short: "The newest set-aside samples (of DEVICE, or of every device), one line per implausible field",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd.Context(), e, func(store *telemetry.Store) error {
				entries, err := store.QuarantineList(cmd.Context(), firstArg(args), limit)
				if err != nil {
					return err
				}
				if asJSON {
					if entries == nil {
						entries = []telemetry.QuarantineEntry{}
					}
					return printJSON(e.stdout, entries)
				}
				if len(entries) == 0 {
					fmt.Fprintln(e.stdout, "the quarantine is empty")
					return nil
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "RECEIVED_AT\tDEVICE\tTS\tFIELD\tREASON\tSAMPLE")
				for _, q := range entries {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s: %s\t%s\n", q.ReceivedAt.UTC().Format(time.RFC3339), q.DeviceID,
						q.TS.UTC().Format(time.RFC3339Nano), q.Field, q.Reason, q.Detail, q.Sample)
				}
				return w.Flush()
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "most lines to print")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON: one object per implausible field, the sample as ingest got it")

	var before string
	purge := &cobra.Command{
		Use:   "purge [DEVICE]",
		Short: "Delete the set-aside samples (of DEVICE, or of every device), all or those received before --before",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseWindowTime("--before", before, time.UTC)
			if err != nil {
				return err
			}
			return withStore(cmd.Context(), e, func(store *telemetry.Store) error {
				n, err := store.PurgeQuarantine(cmd.Context(), firstArg(args), t)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "purged %d quarantine entries\n", n)
				return nil
			})
		},
	}
	purge.Flags().StringVar(&before, "before", "", "only entries received before this time (RFC 3339, or YYYY-MM-DD in UTC)")
	c.AddCommand(list, purge)
	return c
}

// withStore opens the configured database for one command and closes it afterwards.
func withStore(ctx context.Context, e *env, fn func(*telemetry.Store) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(telemetry.NewStore(pool))
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
