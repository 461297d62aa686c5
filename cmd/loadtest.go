package cmd

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/loadtest"
)

func loadtestCommand(e *env) *cobra.Command {
	d := loadtest.Defaults()
	var (
		target      string
		tokens      string
		devices     int
		prefix      string
		printTokens bool
		seed        uint64
	)
	c := &cobra.Command{
		Use:   "loadtest",
		Short: "Drive mixed ingest, realtime and series traffic against a local server and check nothing was lost",
		Long: `Drive the traffic of many homes against a running sungrow server on this machine:
--devices edge daemons each posting a batch of --batch simulated samples every
--ingest-every (retrying 5xx, 429 and network errors with backoff, counting a sample
only once it is answered 200), realtime reads at --realtime-rate and series reads at
--series-rate per second, for --duration. It reports throughput and p50/p99 latency
per endpoint and counts every 5xx; then, with a database URL, it checks that every
acknowledged sample is stored exactly once. It exits non-zero on any unexpected 5xx,
lost or duplicated sample.

Tokens come from --tokens (or DEVICE_TOKENS), in the server's token:device format.
Without them, devices are named <prefix>-NN with tokens <prefix>-token-NN; start the
server with the DEVICE_TOKENS that --print-device-tokens prints.`,
		Example: `  DEVICE_TOKENS=$(sungrow loadtest --print-device-tokens) sungrow serve &
  sungrow loadtest --url http://127.0.0.1:8080 --duration 60s --database-url postgres://...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var devs []loadtest.Device
			if tokens == "" {
				tokens = e.getenv("DEVICE_TOKENS")
			}
			if tokens != "" && !cmd.Flags().Changed("token-prefix") {
				m, err := config.ParseDeviceTokens(tokens)
				if err != nil {
					return fmt.Errorf("--tokens: %w", err)
				}
				for _, tok := range slices.Sorted(maps.Keys(m)) {
					devs = append(devs, loadtest.Device{ID: m[tok], Token: tok})
				}
				if cmd.Flags().Changed("devices") && devices < len(devs) {
					devs = devs[:devices]
				}
			} else {
				devs = loadtest.GeneratedDevices(devices, prefix)
			}
			if printTokens {
				fmt.Fprintln(e.stdout, loadtest.DeviceTokens(devs))
				return nil
			}
			if len(devs) == 0 {
				return errors.New("--devices: want at least 1")
			}
			logger, err := e.logger()
			if err != nil {
				return err
			}
			cfg, err := e.config()
			if err != nil {
				return err
			}
			d.BaseURL, d.Devices, d.Seed, d.Logger = target, devs, seed, logger
			r, err := loadtest.New(d)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "loadtest: %d devices every %s (batches of %d), %.0f realtime/s, %.0f series/s, for %s against %s\n",
				len(devs), d.IngestEvery, d.BatchSize, d.RealtimeRate, d.SeriesRate, d.Duration, target)
			rep := r.Run(ctx)
			fmt.Fprint(e.stdout, rep.String())
			failed := rep.Unexpected() > 0
			if cfg.DatabaseURL == "" {
				fmt.Fprintln(e.stdout, "database: not checked (no --database-url or DATABASE_URL)")
			} else {
				pool, err := openPool(ctx, cfg)
				if err != nil {
					return err
				}
				defer pool.Close()
				v, err := loadtest.Verify(ctx, pool, rep.Acked)
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, v.String())
				failed = failed || !v.OK()
			}
			if failed {
				return errors.New("loadtest: unexpected failures (see above)")
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&target, "url", "http://127.0.0.1:8080", "the server (loopback addresses only)")
	f.StringVar(&tokens, "tokens", "", "token:device pairs, comma-separated (default $DEVICE_TOKENS)")
	f.IntVar(&devices, "devices", 50, "simulated devices (with --tokens: use at most this many)")
	f.StringVar(&prefix, "token-prefix", "loadtest", "names of generated devices and tokens when no tokens are given")
	f.BoolVar(&printTokens, "print-device-tokens", false, "print the DEVICE_TOKENS the server needs for these devices and exit")
	f.DurationVar(&d.Duration, "duration", d.Duration, "how long to start new requests")
	f.DurationVar(&d.IngestEvery, "ingest-every", d.IngestEvery, "each device's cadence")
	f.IntVar(&d.BatchSize, "batch", d.BatchSize, "samples per ingest request (5 s apart in simulated time)")
	f.Float64Var(&d.RealtimeRate, "realtime-rate", d.RealtimeRate, "GET /v1/realtime requests per second")
	f.Float64Var(&d.SeriesRate, "series-rate", d.SeriesRate, "GET /v1/series requests per second")
	f.StringVar(&d.SeriesFrame, "series-frame", d.SeriesFrame, "frame of the series reads")
	f.IntVar(&d.Readers, "readers", d.Readers, "most read requests in flight")
	f.DurationVar(&d.Drain, "drain", d.Drain, "how long a failing batch is still retried after --duration")
	f.Uint64Var(&seed, "seed", uint64(time.Now().UnixNano()), "seed of the simulated samples and device picks")
	return c
}
