package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/series"
)

func deviceCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "device",
		Short: "Add, list and remove devices; running servers follow within seconds",
	}
	c.AddCommand(deviceAddCommand(e), deviceListCommand(e), deviceRemoveCommand(e))
	return c
}

func deviceAddCommand(e *env) *cobra.Command {
	var name, label string
	var interval time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "add ID",
		Short: "Create a device and its first token (printed once, never stored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			// Checked before connecting, so bad input fails the same with or without
			// a database.
			if err := config.CheckDeviceID(id); err != nil {
				return fmt.Errorf("%w %q: %w", devices.ErrInvalidID, id, err)
			}
			if cmd.Flags().Changed("interval") {
				if err := devices.CheckInterval(interval); err != nil {
					return fmt.Errorf("--interval: %w", err)
				}
			}
			var dev devices.Device
			var tok devices.IssuedToken
			err := withAdmin(cmd.Context(), e, func(a *devices.Admin) (err error) {
				dev, tok, err = a.AddDevice(cmd.Context(), id, name, interval, label)
				return err
			})
			if err != nil {
				return err
			}
			warnEnvOverride(e, id)
			if asJSON {
				return printJSON(e.stdout, struct {
					Device devices.Device      `json:"device"`
					Token  devices.IssuedToken `json:"token"`
				}{dev, tok})
			}
			fmt.Fprintf(e.stdout, "added device %s\n", dev.ID)
			printIssued(e.stdout, tok)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "display name")
	c.Flags().DurationVar(&interval, "interval", 0, "seconds one sample stands for, e.g. 5s (default: SAMPLE_INTERVAL_S)")
	c.Flags().StringVar(&label, "label", "", "label of the first token, e.g. where it is installed")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func deviceListCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the devices: id, name, active tokens, newest sample",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []devices.Device
			err := withAdmin(cmd.Context(), e, func(a *devices.Admin) (err error) {
				list, err = a.ListDevices(cmd.Context())
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, list)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tACTIVE TOKENS\tNEWEST SAMPLE\tINTERVAL")
			for _, d := range list {
				interval := "default"
				if d.IntervalS != nil {
					interval = (time.Duration(*d.IntervalS) * time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.ID, d.Name, d.ActiveTokens, timeOrDash(d.NewestSample), interval)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func deviceRemoveCommand(e *env) *cobra.Command {
	var deleteData, yes, asJSON bool
	c := &cobra.Command{
		Use:   "remove ID",
		Short: "Revoke every token of a device and remove it; its samples stay unless --delete-data --yes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if deleteData && !yes {
				return fmt.Errorf("--delete-data deletes every sample of %s for good: add --yes to confirm (nothing was changed)", id)
			}
			if yes && !deleteData {
				return errors.New("--yes confirms --delete-data, which is not given (nothing was changed)")
			}
			var res devices.Removal
			err := withAdmin(cmd.Context(), e, func(a *devices.Admin) (err error) {
				res, err = a.RemoveDevice(cmd.Context(), id, deleteData)
				return err
			})
			if err != nil {
				return err
			}
			out := e.stdout
			if asJSON {
				out = e.stderr // the refresh's progress must not break the JSON
			}
			if res.DeletedSamples > 0 {
				// The continuous aggregates still hold the deleted samples' buckets
				// until those are refreshed.
				sub := *e
				sub.stdout = out
				if err := refresh(cmd.Context(), &sub, res.Oldest.Format(time.RFC3339), "", series.Aggregates, time.Now(), false); err != nil {
					return fmt.Errorf("device %s is removed and its samples deleted, but refreshing the series aggregates failed (run `sungrow refresh --from %s`): %w",
						id, res.Oldest.Format(time.RFC3339), err)
				}
			}
			if asJSON {
				return printJSON(e.stdout, res)
			}
			fmt.Fprintf(e.stdout, "removed device %s: %d token(s) revoked\n", id, res.RevokedTokens)
			if deleteData {
				fmt.Fprintf(e.stdout, "deleted %d sample(s)\n", res.DeletedSamples)
			} else {
				fmt.Fprintln(e.stdout, "its samples stay (delete them with --delete-data --yes)")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&deleteData, "delete-data", false, "delete the device's samples too (needs --yes)")
	c.Flags().BoolVar(&yes, "yes", false, "confirm --delete-data")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// withAdmin opens the database for one admin operation and closes it before returning
// (the TimescaleDB test server takes one connection at a time).
func withAdmin(ctx context.Context, e *env, fn func(*devices.Admin) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := requireMigrated(ctx, pool); err != nil {
		return err
	}
	return fn(devices.NewAdmin(pool))
}

// warnEnvOverride tells an operator moving from DEVICE_TOKENS that the entries for a
// device the table now defines stop working (as far as this command's environment
// shows them).
func warnEnvOverride(e *env, id string) {
	env, err := config.ParseDeviceTokens(e.getenv("DEVICE_TOKENS"))
	if err != nil {
		return
	}
	for _, device := range env {
		if device == id {
			fmt.Fprintf(e.stderr, "note: DEVICE_TOKENS names %s too; serve ignores those entries from now on (the table wins): put the new token on the device\n", id)
			return
		}
	}
}

func printIssued(w io.Writer, tok devices.IssuedToken) {
	// "token N: secret" stays the first line as it always was: scripts read it.
	fmt.Fprintf(w, "token %d: %s\n", tok.ID, tok.Secret)
	if tok.Scope == devices.ReadOnly {
		fmt.Fprintln(w, "It is read-only: it may read everything of its device and may not post samples.")
	}
	fmt.Fprintln(w, "Keep it now: it is not stored and cannot be shown again. Running servers accept it within a few seconds.")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
