package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/collect"
)

func collectCommand(e *env) *cobra.Command {
	var (
		endpoint    string
		unit        uint8
		via         string
		token       string
		device      string
		interval    time.Duration
		uploadEvery time.Duration
		batch       int
		spoolPath   string
		spoolMax    int
		timeout     time.Duration
		once        bool
		listen      string
	)
	c := &cobra.Command{
		Use:   "collect",
		Short: "Read a Sungrow hybrid inverter over Modbus and deliver every reading to the server",
		Long: `Read the inverter every --interval over Modbus TCP (its LAN port or a WiNet-S dongle),
put every reading into a spool file on disk first, and upload the spool to POST
/v1/ingest every --upload-every, oldest first. A reading leaves the spool only after
the server took it, so server outages, a refused token and kill -9 lose nothing that
was spooled. Start with --once: it reads the inverter once and prints the sample.`,
		Example: `  sungrow collect --modbus 192.168.1.50 --once
  sungrow collect --modbus 192.168.1.50 --via https://sungrow.example.org --token sg_...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger, err := e.logger()
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			fromEnv := func(name, envName string, v *string) {
				if !flags.Changed(name) {
					if s := strings.TrimSpace(e.getenv(envName)); s != "" {
						*v = s
					}
				}
			}
			fromEnv("modbus", "COLLECT_MODBUS", &endpoint)
			fromEnv("via", "COLLECT_VIA", &via)
			fromEnv("token", "COLLECT_TOKEN", &token)

			conf, err := collect.ParseEndpoint(endpoint)
			if err != nil {
				return fmt.Errorf("--modbus (COLLECT_MODBUS): %w", err)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: want more than 0", timeout)
			}
			inv := collect.NewInverter(conf, unit, collect.SungrowHybrid, timeout)
			if once {
				return collectOnce(ctx, e, inv, via, token, device, timeout)
			}

			if interval < time.Second {
				return fmt.Errorf("--interval %s: want at least 1s", interval)
			}
			if uploadEvery <= 0 {
				return fmt.Errorf("--upload-every %s: want more than 0", uploadEvery)
			}
			if batch < 1 || batch > 1000 {
				return fmt.Errorf("--batch %d: want 1 to 1000 (the server's MAX_SAMPLES_PER_REQUEST default)", batch)
			}
			if err := checkVia(via); err != nil {
				return err
			}
			if token == "" {
				return errors.New("--token (COLLECT_TOKEN) is required: the device's bearer token (`sungrow device add` prints one)")
			}
			if !flags.Changed("spool-max") {
				spoolMax = int(30 * 24 * time.Hour / interval)
			}
			if spoolMax < 1 {
				return fmt.Errorf("--spool-max %d: want at least 1", spoolMax)
			}
			if spoolPath == "" {
				if spoolPath, err = defaultSpoolPath(e.getenv); err != nil {
					return err
				}
			}
			spool, err := collect.OpenSpool(spoolPath, spoolMax)
			if err != nil {
				return fmt.Errorf("--spool: %w", err)
			}
			defer spool.Close()

			metrics := collect.NewMetrics(spool, time.Now)
			up := collect.NewUploader(via, token, 60*time.Second, logger)
			up.Counted = metrics.Uploaded
			if listen != "" {
				stop, err := serveCollectorStatus(listen, collect.Handler(metrics), logger)
				if err != nil {
					return err
				}
				defer stop()
			}
			logger.Info("collecting", "modbus", conf.URL, "unit", unit, "via", via, "device_id", device,
				"interval", interval.String(), "upload_every", uploadEvery.String(), "spool", spoolPath,
				"spool_max", spoolMax, "spooled", spool.Depth())
			err = collect.Run(ctx, collect.Config{
				Inverter: inv, Spool: spool, Uploader: up, DeviceID: device,
				Interval: interval, UploadEvery: uploadEvery, Batch: batch,
				NotBefore: buildTime(), Now: time.Now, Logger: logger, Metrics: metrics,
			})
			logger.Info("collector stopped", "spooled", spool.Depth())
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&endpoint, "modbus", "", "inverter's Modbus endpoint: HOST[:PORT] (port 502) or rtu:///dev/ttyUSB0?baud=9600 ($COLLECT_MODBUS)")
	f.Uint8Var(&unit, "unit", 1, "Modbus unit (slave) id")
	f.StringVar(&via, "via", "", "the sungrow server, e.g. http://192.168.1.10:8080 ($COLLECT_VIA)")
	f.StringVar(&token, "token", "", "the device's bearer token ($COLLECT_TOKEN; prefer the variable: flags show in ps)")
	f.StringVar(&device, "device", "", "device id to store readings under (default: the token's device from GET /v1/me; with --once and no --via, the inverter's serial number)")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between readings")
	f.DurationVar(&uploadEvery, "upload-every", 10*time.Second, "time between uploads of the spool")
	f.IntVar(&batch, "batch", 1000, "readings per upload request, at most 1000")
	f.StringVar(&spoolPath, "spool", "", "spool file or directory (default: $XDG_STATE_HOME/sungrow/spool.db or ~/.local/state/sungrow/spool.db)")
	f.IntVar(&spoolMax, "spool-max", 0, "readings kept in the spool at most; beyond, the oldest are dropped (default: 30 days at --interval)")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "Modbus request timeout")
	f.BoolVar(&once, "once", false, "read the inverter once, print the sample as JSON on stdout, and exit (no upload)")
	f.StringVar(&listen, "listen", "", "serve /health and /metrics on this address, e.g. :9102")
	return c
}

// collectOnce reads the inverter once and prints the sample as POST /v1/ingest would
// receive it: the check of the wiring a user makes before anything else.
func collectOnce(ctx context.Context, e *env, inv *collect.Inverter, via, token, device string, timeout time.Duration) error {
	defer inv.Close()
	r, err := inv.Read(ctx)
	if err != nil {
		return fmt.Errorf("--once: %w", err)
	}
	if device == "" && via != "" {
		if err := checkVia(via); err != nil {
			return err
		}
		up := collect.NewUploader(via, token, timeout+10*time.Second, slog.New(slog.DiscardHandler))
		if device, err = up.Me(ctx); err != nil {
			return fmt.Errorf("--once: the token's device from GET /v1/me: %w", err)
		}
	}
	if device == "" {
		if device = r.Serial; device == "" {
			return errors.New("--once: the inverter reports no serial number: give --device")
		}
	}
	out, err := json.Marshal(r.Sample(device, time.Now()))
	if err != nil {
		return fmt.Errorf("--once: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

func checkVia(via string) error {
	if via == "" {
		return errors.New("--via (COLLECT_VIA) is required: the sungrow server's URL, e.g. http://192.168.1.10:8080")
	}
	u, err := url.Parse(via)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--via %q: want an http:// or https:// URL", via)
	}
	return nil
}

// defaultSpoolPath is under the user's state directory (XDG_STATE_HOME, else
// ~/.local/state), or STATE_DIRECTORY when systemd gives one.
func defaultSpoolPath(getenv func(string) string) (string, error) {
	if d := getenv("STATE_DIRECTORY"); d != "" {
		return filepath.Join(strings.Split(d, ":")[0], "spool.db"), nil
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sungrow", "spool.db"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("--spool: no home directory to keep the spool in; give --spool PATH")
		}
	}
	return filepath.Join(home, ".local", "state", "sungrow", "spool.db"), nil
}

// serveCollectorStatus serves h on addr until the returned stop is called.
func serveCollectorStatus(addr string, h http.Handler, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("collector status server", "err", err.Error())
		}
	}()
	logger.Info("serving /health and /metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// buildTime is when the binary's commit was made (Go stamps it into the build); a
// clock before it is certainly not set. Without VCS stamping it is the zero time, so
// nothing is held back.
func buildTime() time.Time {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return time.Time{}
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.time" {
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}
