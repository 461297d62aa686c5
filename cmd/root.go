// Package cmd is sungrow's command line: one cobra command per file, each turning flags
// and environment into a config and calling into the rest of the program.
package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
)

// Version and Commit are set at build time with -ldflags "-X ..."; without them the
// commit is read from the binary's build information (see commitOf).
var (
	Version = "dev"
	Commit  = "unknown"
)

// env is what every command gets from its caller instead of reaching for globals.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	// databaseURL is the --database-url flag; it wins over DATABASE_URL.
	databaseURL string
}

// config loads the configuration and applies the flags that override it.
func (e *env) config() (config.Config, error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return cfg, err
	}
	if e.databaseURL != "" {
		cfg.DatabaseURL = e.databaseURL
	}
	return cfg, nil
}

// logger writes JSON lines to stderr at LOG_LEVEL (default info).
func (e *env) logger() (*slog.Logger, error) {
	var level slog.Level
	if v := strings.TrimSpace(e.getenv("LOG_LEVEL")); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level})), nil
}

// Run runs the sungrow command line with args (without the program name). It reads
// nothing from the process but what it is given, so tests can run it whole.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "sungrow",
		Short:         "Self-hosted backend for Sungrow hybrid inverter telemetry",
		Version:       versionText(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.databaseURL, "database-url", "", "PostgreSQL URL (default $DATABASE_URL)")
	root.AddCommand(serveCommand(e), migrateCommand(e), simulateCommand(e),
		versionCommand(e), healthcheckCommand(e), refreshCommand(e), loadtestCommand(e), quarantineCommand(e),
		deviceCommand(e), tokenCommand(e), storageCommand(e), tariffCommand(e), alertCommand(e), verifyCommand(e),
		collectCommand(e))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}
