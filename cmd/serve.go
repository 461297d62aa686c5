package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/telemetry"
)

func serveCommand(e *env) *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.ListenAddr = listen
			}
			return serve(cmd.Context(), e, cfg)
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default $LISTEN_ADDR or :8080)")
	return c
}

func serve(ctx context.Context, e *env, cfg config.Config) error {
	logger, err := e.logger()
	if err != nil {
		return err
	}
	tokens, err := config.ParseDeviceTokens(e.getenv("DEVICE_TOKENS"))
	if err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := requireMigrated(ctx, pool); err != nil {
		return err
	}
	store := telemetry.NewStore(pool)
	timescale, err := store.TimescaleInstalled(ctx)
	if err != nil {
		return err
	}
	if !timescale {
		logger.Warn("timescaledb is not installed: sungrow_samples is a plain table")
	}

	var invalidator httpapi.RealtimeInvalidator
	if cfg.RedisURL != "" {
		rc, err := cache.NewRedis(cfg.RedisURL, logger)
		if err != nil {
			return err
		}
		defer rc.Close()
		invalidator = rc
	}

	handler := httpapi.NewServer(httpapi.Deps{
		Logger:               logger,
		Tokens:               tokens,
		Samples:              store,
		Cache:                invalidator,
		MaxRequestBytes:      cfg.MaxRequestBytes,
		MaxSamplesPerRequest: cfg.MaxSamplesPerRequest,
	})
	return listenAndServe(ctx, logger, cfg, handler)
}

// requireMigrated refuses to serve a schema older than the binary expects.
func requireMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	return withPoolMigrator(pool, func(p *goose.Provider) error {
		current, target, err := p.GetVersions(ctx)
		if err != nil {
			return fmt.Errorf("check schema version: %w", err)
		}
		if current < target {
			return fmt.Errorf("the database schema is at version %d, this binary needs %d: run `sungrow migrate up` first", current, target)
		}
		return nil
	})
}

// listenAndServe serves until ctx is cancelled, then lets in-flight requests finish
// within the shutdown timeout.
func listenAndServe(ctx context.Context, logger *slog.Logger, cfg config.Config, handler http.Handler) error {
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
