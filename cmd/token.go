package cmd

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/devices"
)

func tokenCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Add, list and revoke device tokens; running servers follow within seconds",
	}
	c.AddCommand(tokenAddCommand(e), tokenListCommand(e), tokenRevokeCommand(e))
	return c
}

func tokenAddCommand(e *env) *cobra.Command {
	var label string
	var asJSON, readOnly bool
	c := &cobra.Command{
		Use:   "add DEVICE",
		Short: "Issue another token for a device (printed once, never stored), e.g. to rotate one or for a dashboard (--read-only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope := devices.ReadWrite
			if readOnly {
				scope = devices.ReadOnly
			}
			var tok devices.IssuedToken
			err := withAdmin(cmd.Context(), e, func(a *devices.Admin) (err error) {
				tok, err = a.AddToken(cmd.Context(), args[0], label, scope)
				return err
			})
			if err != nil {
				return err
			}
			warnEnvOverride(e, args[0])
			if asJSON {
				return printJSON(e.stdout, tok)
			}
			printIssued(e.stdout, tok)
			return nil
		},
	}
	c.Flags().StringVar(&label, "label", "", "label, e.g. where the token is installed")
	c.Flags().BoolVar(&readOnly, "read-only", false, "a token that may read the device's data but not post samples (for a dashboard)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// listedToken is one line of `token list`: a token of the table, or an entry of this
// command's DEVICE_TOKENS (no id, no dates; never the token).
type listedToken struct {
	ID         *int64     `json:"id"`
	Source     string     `json:"source"` // "table" or "DEVICE_TOKENS"
	DeviceID   string     `json:"device_id"`
	Label      string     `json:"label"`
	CreatedAt  *time.Time `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Scope: read-write or read-only; DEVICE_TOKENS entries are always read-write.
	Scope devices.Scope `json:"scope"`
	// State: active, revoked, or for DEVICE_TOKENS entries "ignored" when the table
	// defines their device (the table wins).
	State string `json:"state"`
}

func tokenListCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [DEVICE]",
		Short: "List tokens (id, scope, label, created, last used, revoked), DEVICE_TOKENS entries as such; never a token",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			device := ""
			if len(args) == 1 {
				device = args[0]
			}
			env, err := config.ParseDeviceTokens(e.getenv("DEVICE_TOKENS"))
			if err != nil {
				return err
			}
			var list []listedToken
			err = withAdmin(cmd.Context(), e, func(a *devices.Admin) error {
				tokens, err := a.ListTokens(cmd.Context(), device)
				if err != nil {
					return err
				}
				for _, t := range tokens {
					state := "active"
					if t.RevokedAt != nil {
						state = "revoked"
					}
					list = append(list, listedToken{ID: &t.ID, Source: "table", DeviceID: t.DeviceID, Label: t.Label,
						CreatedAt: &t.CreatedAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, Scope: t.Scope, State: state})
				}
				envDevices := slices.Sorted(maps.Values(env))
				for _, d := range envDevices {
					if device != "" && d != device {
						continue
					}
					state := "active"
					defined, err := a.DeviceDefined(cmd.Context(), d)
					if err != nil {
						return err
					}
					if defined {
						state = "ignored"
					}
					list = append(list, listedToken{Source: "DEVICE_TOKENS", DeviceID: d, Scope: devices.ReadWrite, State: state})
				}
				if device != "" && len(list) == 0 {
					defined, err := a.DeviceDefined(cmd.Context(), device)
					if err != nil {
						return err
					}
					if !defined {
						return fmt.Errorf("%w: %q (see `sungrow device list`)", devices.ErrUnknownDevice, device)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []listedToken{}
				}
				return printJSON(e.stdout, list)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDEVICE\tSCOPE\tLABEL\tCREATED\tLAST USED\tREVOKED\tSTATE")
			for _, t := range list {
				id := "env"
				if t.ID != nil {
					id = strconv.FormatInt(*t.ID, 10)
				}
				state := t.State
				if t.Source == "DEVICE_TOKENS" {
					state += " (DEVICE_TOKENS"
					if t.State == "ignored" {
						state += ": the table defines this device"
					}
					state += ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, t.DeviceID, t.Scope, t.Label, timeOrDash(t.CreatedAt),
					timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt), state)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func tokenRevokeCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (by the id `token list` shows); running servers refuse it within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return fmt.Errorf("%w: %q: want the number `sungrow token list` shows (DEVICE_TOKENS entries are revoked by editing DEVICE_TOKENS)",
					devices.ErrUnknownToken, args[0])
			}
			var tok devices.Token
			var was bool
			err = withAdmin(cmd.Context(), e, func(a *devices.Admin) (err error) {
				tok, was, err = a.RevokeToken(cmd.Context(), id)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, struct {
					devices.Token
					AlreadyRevoked bool `json:"already_revoked"`
				}{tok, was})
			}
			if was {
				fmt.Fprintf(e.stdout, "token %d of %s was already revoked at %s\n", tok.ID, tok.DeviceID, timeOrDash(tok.RevokedAt))
				return nil
			}
			fmt.Fprintf(e.stdout, "revoked token %d of %s\n", tok.ID, tok.DeviceID)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
