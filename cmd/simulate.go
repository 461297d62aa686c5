package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	// The zone database travels in the binary so --tz and SUNGROW_TZ work in a
	// scratch or distroless image too.
	_ "time/tzdata"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/simulate"
	"github.com/sungrow/sungrow/telemetry"
)

func simulateCommand(e *env) *cobra.Command {
	var (
		device     string
		days       float64
		interval   time.Duration
		seed       uint64
		latitude   float64
		batteryKWh float64
		batteryKW  float64
		pvKWp      float64
		tz         string
		end        string
		via        string
		token      string
		batch      int
		modbusAddr string
	)
	c := &cobra.Command{
		Use:   "simulate",
		Short: "Generate realistic telemetry for a device, into the database or through the API",
		Long: `Generate the telemetry of a made-up home with solar panels and a battery: PV that
follows the sun for the season and latitude with passing clouds, a house load with
morning and evening peaks, a battery that charges from surplus and covers the load,
and the grid as the balance. The same --seed and range give the same samples.

Without --via the samples go straight into the database (DATABASE_URL) in large
batches; with --via they are posted to POST /v1/ingest with --token, in batches of
1000, retrying server errors and 429 with backoff. Storing is idempotent, so running
the same command again adds nothing twice.`,
		Example: `  sungrow simulate --device inverter-01 --days 7
  sungrow simulate --device inverter-01 --days 1 --via http://127.0.0.1:8080 --token s3cret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger, err := e.logger()
			if err != nil {
				return err
			}
			if strings.TrimSpace(device) == "" {
				return errors.New("--device is required")
			}
			if days <= 0 && modbusAddr == "" {
				return fmt.Errorf("--days %g: want more than 0", days)
			}
			cfg, err := e.config()
			if err != nil {
				return err
			}
			loc := cfg.TZ // SUNGROW_TZ: the zone the server's days begin in
			if tz != "" {
				if loc, err = time.LoadLocation(tz); err != nil {
					return fmt.Errorf("--tz %q: %w", tz, err)
				}
			}
			endAt := time.Now()
			if end != "" {
				if endAt, err = time.Parse(time.RFC3339, end); err != nil {
					return fmt.Errorf("--end %q: want an RFC 3339 time, e.g. 2026-02-15T00:00:00Z", end)
				}
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			if modbusAddr != "" {
				return serveEmulatedInverter(ctx, e, logger, modbusAddr, simulate.Config{
					DeviceID: device, Start: time.Now(), End: time.Now().AddDate(100, 0, 0),
					Interval: interval, Seed: seed, Latitude: latitude, Location: loc,
					PVPeakW: pvKWp * 1000, BatteryKWh: batteryKWh, BatteryMaxW: batteryKW * 1000,
				})
			}
			g, err := simulate.New(simulate.Config{
				DeviceID:    device,
				Start:       endAt.Add(-time.Duration(days * 24 * float64(time.Hour))),
				End:         endAt,
				Interval:    interval,
				Seed:        seed,
				Latitude:    latitude,
				Location:    loc,
				PVPeakW:     pvKWp * 1000,
				BatteryKWh:  batteryKWh,
				BatteryMaxW: batteryKW * 1000,
			})
			if err != nil {
				return err
			}

			var sink simulate.Sink
			target := via
			if via != "" {
				if token == "" {
					return errors.New("--via needs --token: a bearer token of --device (from `sungrow device add` or the server's DEVICE_TOKENS)")
				}
				sink = simulate.NewHTTPSink(via, token, logger)
				batch = min(batch, simulate.MaxHTTPBatch)
			} else {
				if err := cfg.RequireDatabase(); err != nil {
					return fmt.Errorf("%w, or post through the API with --via URL --token T", err)
				}
				pool, err := openPool(ctx, cfg)
				if err != nil {
					return err
				}
				defer pool.Close()
				if err := requireMigrated(ctx, pool); err != nil {
					return err
				}
				sink = telemetry.NewStore(pool)
				target = "the database"
			}

			total := g.Count()
			fmt.Fprintf(e.stdout, "simulating %d samples of %s every %s from %s (seed %d) into %s\n",
				total, device, interval, g.First().Format(time.RFC3339), seed, target)
			started := time.Now()
			lastReport := started
			res, err := simulate.Run(ctx, g, sink, batch, func(r simulate.Result) {
				if time.Since(lastReport) >= 5*time.Second {
					lastReport = time.Now()
					fmt.Fprintf(e.stdout, "  %d/%d samples, up to %s\n", r.Samples, total, r.Last.Format(time.RFC3339))
				}
			})
			if err != nil {
				return fmt.Errorf("simulate: %w", err)
			}
			elapsed := time.Since(started)
			fmt.Fprintf(e.stdout, "stored %d new of %d samples (%s to %s) in %s\n", res.Inserted, res.Samples,
				g.First().Format(time.RFC3339), res.Last.Format(time.RFC3339), elapsed.Round(time.Millisecond))
			l := g.Ledger()
			fmt.Fprintf(e.stdout, "generated energy: pv_kwh=%s load_kwh=%s grid_import_kwh=%s grid_export_kwh=%s "+
				"battery_charge_kwh=%s battery_discharge_kwh=%s battery_loss_kwh=%s\n",
				kwhText(l.PVKWh), kwhText(l.LoadKWh), kwhText(l.GridImportKWh), kwhText(l.GridExportKWh),
				kwhText(l.BatteryChargeKWh), kwhText(l.BatteryDischargeKWh), kwhText(l.BatteryLossKWh))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&device, "device", "", "device id to simulate (required)")
	f.Float64Var(&days, "days", 7, "how many days of data, ending at --end")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between samples")
	f.Uint64Var(&seed, "seed", 0, "random seed; the same seed and range give the same samples (default: random, printed)")
	f.Float64Var(&latitude, "latitude", simulate.DefaultLatitude, "latitude of the house, degrees north")
	f.Float64Var(&pvKWp, "pv-kwp", simulate.DefaultPVPeakW/1000, "PV array power in full sun, kW")
	f.Float64Var(&batteryKWh, "battery-kwh", simulate.DefaultBatteryKWh, "usable battery capacity, kWh (0: no battery)")
	f.Float64Var(&batteryKW, "battery-kw", simulate.DefaultBatteryMaxW/1000, "most battery charge or discharge power, kW")
	f.StringVar(&tz, "tz", "", "time zone of the house: pv_daily_kwh restarts at its midnight (default $SUNGROW_TZ or UTC)")
	f.StringVar(&end, "end", "", "RFC 3339 time of the end of the data (default now)")
	f.StringVar(&via, "via", "", "base URL of a sungrow server to post to instead of writing the database")
	f.StringVar(&token, "token", "", "bearer token for --via")
	f.IntVar(&batch, "batch", 5000, "samples per batch (at most 1000 with --via)")
	f.StringVar(&modbusAddr, "modbus", "", "serve the house live as an emulated Sungrow inverter over Modbus TCP on HOST:PORT (for `sungrow collect`) instead of generating history")
	return c
}

// serveEmulatedInverter serves the simulated house live over Modbus TCP until ctx ends.
func serveEmulatedInverter(ctx context.Context, e *env, logger *slog.Logger, addr string, cfg simulate.Config) error {
	g, err := simulate.New(cfg)
	if err != nil {
		return err
	}
	inv := simulate.NewEmulatedInverter(g, "SIM-"+cfg.DeviceID, time.Now)
	if err := inv.Start(ctx, addr); err != nil {
		return err
	}
	defer inv.Stop()
	logger.Info("serving an emulated Sungrow inverter", "modbus", addr, "device_id", cfg.DeviceID,
		"interval", cfg.Interval.String(), "seed", cfg.Seed)
	fmt.Fprintf(e.stdout, "emulated inverter of %s on modbus %s (read it with: sungrow collect --modbus %s --once)\n",
		cfg.DeviceID, addr, addr)
	<-ctx.Done()
	return nil
}

// kwhText prints a ledger figure with every digit it has, so a user or a test can
// compare it with GET /v1/series exactly.
func kwhText(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
