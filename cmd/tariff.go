package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/tariff"
)

func tariffCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "tariff set|import|list|remove",
		Short: "Prices behind the money fields of GET /v1/series",
		Long: `Prices per kWh for grid import and export, per device (--device) or for all
devices without prices of their own. A fixed price or a time-of-use window applies
from local midnight (SUNGROW_TZ) of --from until the next --from of the same device;
hourly prices (tariff import) win over both wherever they have an hour. A device has
one currency.`,
	}
	c.AddCommand(tariffSetCommand(e), tariffImportCommand(e), tariffListCommand(e), tariffRemoveCommand(e))
	return c
}

func tariffSetCommand(e *env) *cobra.Command {
	var device, from, imp, exp, currency, window, days string
	c := &cobra.Command{
		Use:   "set [--device D] --from DATE --import P --export P [--currency EUR] [--window HH:MM-HH:MM [--days mon-sun]]",
		Short: "Set a fixed price, or a time-of-use window, from a date on",
		Long: `Without --window: the fixed price from --from on (one per device and date); it
ends the prices of the dates before. With --window: a time-of-use price for those local
hours of the --days (default every day) from --from on; a window past midnight
(22:00-06:00) belongs to the day it begins. Windows of one date may not overlap; inside
a window its price wins over the date's fixed price. Windows are whole hours.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := tariff.Tariff{DeviceID: device, Kind: tariff.Fixed}
			var errs []error
			var err error
			if t.ValidFrom, err = tariff.ParseDate(from); err != nil {
				errs = append(errs, fmt.Errorf("--from %w", err))
			}
			if t.Import, err = tariff.ParsePrice(imp); err != nil {
				errs = append(errs, fmt.Errorf("--import %w", err))
			}
			if t.Export, err = tariff.ParsePrice(exp); err != nil {
				errs = append(errs, fmt.Errorf("--export %w", err))
			}
			if t.Currency, err = tariff.ParseCurrency(currency); err != nil {
				errs = append(errs, fmt.Errorf("--currency %w", err))
			}
			switch {
			case window != "":
				t.Kind = tariff.Window
				if t.Window.Start, t.Window.End, err = tariff.ParseWindow(window); err != nil {
					errs = append(errs, fmt.Errorf("--window %w", err))
				}
				if t.Window.Days, err = tariff.ParseDays(days); err != nil {
					errs = append(errs, fmt.Errorf("--days %w", err))
				}
			case cmd.Flags().Changed("days"):
				errs = append(errs, errors.New("--days needs --window"))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			return withTariffs(cmd, e, func(s *tariff.Store) error {
				id, unpriced, err := s.Set(cmd.Context(), t)
				if err != nil {
					return err
				}
				t.ID = id
				fmt.Fprintf(e.stdout, "set price %d: %s\n", id, describe(t))
				if unpriced > 0 {
					fmt.Fprintf(e.stdout, "note: %d hours of the week have no price from %s (no fixed price that date): set one without --window to cover them\n",
						unpriced, t.ValidFrom.Format(time.DateOnly))
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&device, "device", tariff.AllDevices, "device the price is for (default: all devices)")
	c.Flags().StringVar(&from, "from", "", "date (YYYY-MM-DD) the price applies from, at local midnight")
	c.Flags().StringVar(&imp, "import", "", "price per kWh bought from the grid")
	c.Flags().StringVar(&exp, "export", "", "price per kWh sold to the grid (feed-in)")
	c.Flags().StringVar(&currency, "currency", "EUR", "ISO 4217 currency code")
	c.Flags().StringVar(&window, "window", "", "local hours of a time-of-use price, e.g. 22:00-06:00")
	c.Flags().StringVar(&days, "days", "mon-sun", "weekdays a window begins on, e.g. mon-fri or sat,sun")
	_ = c.MarkFlagRequired("from")
	_ = c.MarkFlagRequired("import")
	_ = c.MarkFlagRequired("export")
	return c
}

func tariffImportCommand(e *env) *cobra.Command {
	var device, currency string
	c := &cobra.Command{
		Use:   "import [--device D] [--currency EUR] FILE.csv",
		Short: "Import hourly prices from CSV (start,import_price[,export_price])",
		Long: `Lines of start,import_price[,export_price], an RFC 3339 start of a whole hour (as
day-ahead exports and Tibber give them), an optional header line; "-" reads stdin.
An hour priced before takes the new price. An hour with no hourly price, or with no
export price, falls back to the fixed or time-of-use price in force. A malformed line
is refused naming its line and field, and then nothing is imported.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			cur, err := tariff.ParseCurrency(currency)
			if err != nil {
				return fmt.Errorf("--currency %w", err)
			}
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("open the prices: %w", err)
				}
				defer f.Close()
				r = f
			}
			prices, err := tariff.ParseCSV(r, args[0], cfg.TZ)
			if err != nil {
				return err
			}
			return withTariffs(cmd, e, func(s *tariff.Store) error {
				id, err := s.Import(cmd.Context(), device, cur, prices)
				if err != nil {
					return err
				}
				first, last := prices[0].Start, prices[0].Start
				for _, p := range prices {
					if p.Start.Before(first) {
						first = p.Start
					}
					if p.Start.After(last) {
						last = p.Start
					}
				}
				fmt.Fprintf(e.stdout, "imported %d hourly prices in %s for %s as price %d, from %s to %s\n",
					len(prices), cur, scopeName(device), id, first.UTC().Format(time.RFC3339), last.Add(time.Hour).UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	c.Flags().StringVar(&device, "device", tariff.AllDevices, "device the prices are for (default: all devices)")
	c.Flags().StringVar(&currency, "currency", "EUR", "ISO 4217 currency code")
	return c
}

// listedTariff is one price of `tariff list --json`: what applies where and when, the
// prices as the database keeps them (decimal text, never rounded through a float).
type listedTariff struct {
	ID int64 `json:"id"`
	// DeviceID is null for the prices of every device without prices of its own.
	DeviceID *string     `json:"device_id"`
	Kind     tariff.Kind `json:"kind"`
	// ValidFrom is the local date a fixed price or window applies from (null: hourly).
	ValidFrom *string `json:"valid_from"`
	// Window: "22:00-06:00", Days: "mon-fri" (window prices only).
	Window string `json:"window,omitempty"`
	Days   string `json:"days,omitempty"`
	// Import and Export per kWh (null: hourly, each hour its own).
	Import   *string `json:"import"`
	Export   *string `json:"export"`
	Currency string  `json:"currency"`
	// Hours, First and Last (the end of the last hour) describe an hourly import.
	Hours int64      `json:"hours,omitempty"`
	First *time.Time `json:"first,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

func listedTariffOf(t tariff.Tariff) listedTariff {
	l := listedTariff{ID: t.ID, Kind: t.Kind, Currency: t.Currency}
	if t.DeviceID != tariff.AllDevices {
		l.DeviceID = &t.DeviceID
	}
	if t.Kind == tariff.Hourly {
		until := t.Last.Add(time.Hour)
		l.Hours, l.First, l.Until = t.Hours, &t.First, &until
		return l
	}
	from := t.ValidFrom.Format(time.DateOnly)
	l.ValidFrom, l.Import, l.Export = &from, &t.Import, &t.Export
	if t.Kind == tariff.Window {
		l.Window, l.Days = t.Window.String(), t.Window.Days.String()
	}
	return l
}

func tariffListCommand(e *env) *cobra.Command {
	var device string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--device D]",
		Short: "List the prices (of one device and of all devices, with --device)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withTariffs(cmd, e, func(s *tariff.Store) error {
				list, err := s.List(cmd.Context(), device)
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]listedTariff, 0, len(list))
					for _, t := range list {
						out = append(out, listedTariffOf(t))
					}
					return printJSON(e.stdout, out)
				}
				if len(list) == 0 {
					fmt.Fprintln(e.stdout, "no prices")
					return nil
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tDEVICE\tKIND\tFROM\tWINDOW\tIMPORT\tEXPORT\tCURRENCY")
				for _, t := range list {
					from, win, imp, exp := t.ValidFrom.Format(time.DateOnly), "", t.Import, t.Export
					switch t.Kind {
					case tariff.Window:
						win = t.Window.String() + " " + t.Window.Days.String()
					case tariff.Hourly:
						from = t.First.UTC().Format(time.RFC3339)
						win = fmt.Sprintf("%d hours to %s", t.Hours, t.Last.Add(time.Hour).UTC().Format(time.RFC3339))
						imp, exp = "hourly", "hourly"
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, scopeName(t.DeviceID), t.Kind, from, win, imp, exp, t.Currency)
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&device, "device", tariff.AllDevices, "only the prices that apply to this device")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func tariffRemoveCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove one price, or one import with all its hours",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a price id (see sungrow tariff list)", args[0])
			}
			return withTariffs(cmd, e, func(s *tariff.Store) error {
				if err := s.Remove(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed price %d\n", id)
				return nil
			})
		},
	}
}

// withTariffs opens the database for fn's store.
func withTariffs(cmd *cobra.Command, e *env, fn func(*tariff.Store) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, err := openPool(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(tariff.NewStore(pool))
}

func scopeName(device string) string {
	if device == tariff.AllDevices {
		return "(all devices)"
	}
	return device
}

// describe says what a price is, for set's confirmation.
func describe(t tariff.Tariff) string {
	s := fmt.Sprintf("%s from %s, import %s, export %s %s/kWh", scopeName(t.DeviceID),
		t.ValidFrom.Format(time.DateOnly), t.Import, t.Export, t.Currency)
	if t.Kind == tariff.Window {
		s += fmt.Sprintf(", window %s %s", t.Window, t.Window.Days)
	}
	return s
}
