package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/alerts"
)

func alertCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "alert",
		Short: "Alert rules: webhooks told when a device goes quiet, its clock is wrong or its battery runs hot or low",
	}
	c.AddCommand(alertAddCommand(e), alertListCommand(e), alertRemoveCommand(e), alertTestCommand(e))
	return c
}

func alertAddCommand(e *env) *cobra.Command {
	var n alerts.NewRule
	var after, repeat time.Duration
	var above, below float64
	var secret string
	var asJSON bool
	c := &cobra.Command{
		Use:   "add (--device D | --all) --rule R [--after D] [--above C] [--below X] [--repeat D] --webhook URL [--secret S]",
		Short: "Add an alert rule (offline, clock, battery_temp, soc_low) with one or more webhooks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if f.Changed("after") {
				n.After = &after
			}
			if f.Changed("repeat") {
				n.Repeat = &repeat
			}
			if f.Changed("above") {
				n.Above = &above
			}
			if f.Changed("below") {
				n.Below = &below
			}
			if f.Changed("secret") {
				n.Secret = &secret
			}
			// Checked before connecting: bad input fails the same with or without a
			// database, and writes nothing.
			if _, err := n.Rule(); err != nil {
				return err
			}
			var r alerts.Rule
			err := withAlerts(cmd.Context(), e, func(s *alerts.Store) (err error) {
				r, err = s.Add(cmd.Context(), n)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "added alert %d: %s on %s, %d webhook(s)%s; running servers check it within ALERT_CHECK_S\n",
				r.ID, r.Kind, deviceOrAll(r.DeviceID), len(r.Webhooks), signedNote(r.Secret))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&n.DeviceID, "device", "", "the device the rule watches")
	f.BoolVar(&n.All, "all", false, "watch every device")
	f.StringVar(&n.Kind, "rule", "", "offline, clock, battery_temp or soc_low")
	f.DurationVar(&after, "after", alerts.DefaultAfter, "offline: no sample for this long (at least 10s); soc_low: below --below for this long")
	f.Float64Var(&above, "above", 0, "battery_temp: fire above this many °C")
	f.Float64Var(&below, "below", 0, "battery_temp: fire below this many °C; soc_low: fire below this state of charge, %")
	f.DurationVar(&repeat, "repeat", alerts.DefaultRepeat, "a reminder this often while it fires; 0: never")
	f.StringArrayVar(&n.Webhooks, "webhook", nil, "URL to POST each notification to (repeatable)")
	f.StringVar(&secret, "secret", "", "HMAC-SHA256 key of the X-Sungrow-Signature header")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func alertListCommand(e *env) *cobra.Command {
	var asJSON bool
	var device string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the alert rules with their state per device and their latest deliveries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []alerts.Status
			err := withAlerts(cmd.Context(), e, func(s *alerts.Store) (err error) {
				list, err = s.List(cmd.Context(), device)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, list)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDEVICE\tRULE\tCONDITION\tREPEAT\tWEBHOOKS\tSTATE")
			for _, a := range list {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s%s\t%s\n", a.ID, deviceOrAll(a.DeviceID), a.Kind, a.Condition,
					repeatText(a.Repeat()), strings.Join(a.Webhooks, " "), signedNote(a.Secret), stateText(a.Devices))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&device, "device", "", "only the rules watching this device, and its state")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func alertRemoveCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove an alert rule; notifications of it not yet delivered are dropped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertID(args[0])
			if err != nil {
				return err
			}
			if err := withAlerts(cmd.Context(), e, func(s *alerts.Store) error { return s.Remove(cmd.Context(), id) }); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed alert %d\n", id)
			return nil
		},
	}
}

func alertTestCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "test ID",
		Short: "Send a test notification to each webhook of a rule and print what it answered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertID(args[0])
			if err != nil {
				return err
			}
			var r alerts.Rule
			if err := withAlerts(cmd.Context(), e, func(s *alerts.Store) (err error) {
				r, err = s.Get(cmd.Context(), id)
				return err
			}); err != nil {
				return err
			}
			answers, err := alerts.Test(cmd.Context(), http.DefaultClient, r, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, answers)
			}
			failed := 0
			for i, a := range answers {
				fmt.Fprintf(e.stdout, "webhook %d (%s): %s\n", i+1, alerts.RedactURL(r.Webhooks[i]), a)
				if !a.OK() {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d webhook(s) did not accept the test notification", failed, len(answers))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// withAlerts opens the database for one alert operation and closes it before returning
// (the TimescaleDB test server takes one connection at a time).
func withAlerts(ctx context.Context, e *env, fn func(*alerts.Store) error) error {
	return withMigrated(ctx, e, func(pool *pgxpool.Pool) error { return fn(alerts.NewStore(pool, nil)) })
}

func alertID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return 0, errors.New("ID: want the number `sungrow alert list` shows")
	}
	return id, nil
}

func deviceOrAll(device string) string {
	if device == "" {
		return "(all)"
	}
	return device
}

func signedNote(secret string) string {
	if secret != "" {
		return " (signed)"
	}
	return ""
}

func repeatText(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

// stateText names the devices the rule fires for, or says ok.
func stateText(devices []alerts.DeviceState) string {
	var firing []string
	for _, d := range devices {
		if d.State == alerts.StateFiring {
			firing = append(firing, d.DeviceID)
		}
	}
	if len(firing) == 0 {
		return "ok"
	}
	return "firing: " + strings.Join(firing, ",")
}
