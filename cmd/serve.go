package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/cache"
	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/devices"
	"github.com/sungrow/sungrow/homeassistant"
	"github.com/sungrow/sungrow/httpapi"
	"github.com/sungrow/sungrow/metrics"
	"github.com/sungrow/sungrow/storage"
	"github.com/sungrow/sungrow/stream"
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
	envTokens, err := config.ParseDeviceTokens(e.getenv("DEVICE_TOKENS"))
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
	store := telemetry.NewStore(pool, telemetry.WithQuarantineMax(cfg.QuarantineMaxPerDevice))
	timescale, err := store.TimescaleInstalled(ctx)
	if err != nil {
		return err
	}
	if !timescale {
		logger.Warn("timescaledb is not installed: sungrow_samples is a plain table")
	}

	// A nil *cache.Realtime must not become a non-nil interface: realtime stays nil
	// when caching is off.
	var realtime httpapi.RealtimeCache
	rc, err := realtimeCache(cfg, logger)
	if err != nil {
		return err
	}
	if rc != nil {
		defer rc.Close()
		realtime = rc
	}

	registry, err := devices.Open(ctx, pool, envTokens, devices.Options{Logger: logger})
	if err != nil {
		return err
	}
	// The registry outlives the HTTP server by a moment: it writes the last uses the
	// final requests queued after they are done.
	registryCtx, stopRegistry := context.WithCancel(context.WithoutCancel(ctx))
	registryDone := make(chan struct{})
	go func() { defer close(registryDone); registry.Run(registryCtx) }()
	defer func() { stopRegistry(); <-registryDone }()

	m := metrics.New()
	m.WatchPool(pool)
	stopSizes := watchStorage(ctx, pool, m, logger)
	defer stopSizes()
	ready := []httpapi.ReadyCheck{{Name: "database", Check: pool.Ping},
		{Name: "device_tokens", Check: registry.CheckTokens, Public: true}}
	if rc != nil && rc.Name() == "redis" {
		ready = append(ready, httpapi.ReadyCheck{Name: "redis", Check: rc.Ping})
	}
	// A device's own interval (device add --interval) wins over SAMPLE_INTERVAL_S.
	interval := func(deviceID string) time.Duration {
		if d, ok := registry.SampleInterval(deviceID); ok {
			return d
		}
		return cfg.SampleInterval
	}
	seriesReader, lateData, stopSeries, err := startSeries(ctx, pool, cfg, interval, logger, m)
	if err != nil {
		return err
	}
	defer stopSeries()
	var stored []httpapi.StoredListener
	if cfg.MQTTURL != nil {
		bridge, err := startHomeAssistant(ctx, cfg, logger, m, store, seriesReader, registry)
		if err != nil {
			return err
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
			defer cancel()
			bridge.Close(closeCtx)
		}()
		stored = append(stored, bridge)
	}

	hub := stream.New(stream.Options{
		Source:       httpapi.NewRealtimeSource(store),
		Publish:      stream.Notify(pool),
		Subscription: streamSubscription(pool, logger),
		MaxClients:   cfg.StreamMaxClients,
		Logger:       logger,
	})
	// The hub outlives the HTTP server: ingests finishing during shutdown still notify.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); hub.Run(hubCtx) }()
	defer func() { stopHub(); <-hubDone }()

	handler := httpapi.NewServer(httpapi.Deps{
		Metrics:              m,
		Ready:                ready,
		CORSOrigins:          cfg.CORSOrigins,
		Logger:               logger,
		Devices:              registry,
		Samples:              store,
		Cache:                realtime,
		MaxRequestBytes:      cfg.MaxRequestBytes,
		MaxSamplesPerRequest: cfg.MaxSamplesPerRequest,
		Series:               seriesReader,
		LateData:             lateData,
		Stored:               append([]httpapi.StoredListener{hub}, stored...),
		Stream:               hub,
		StreamKeepalive:      cfg.StreamKeepalive,
		Quarantine:           store,
	})
	return listenAndServe(ctx, logger, cfg, handler, hub.EndStreams)
}

// streamSubscription is how this instance hears the others' samples for the live
// stream: LISTEN on a connection of its own, or, when the pool may hold one connection
// only (a server that serves one at a time would wait on a held LISTEN forever),
// reading each streamed device twice a second.
func streamSubscription(pool *pgxpool.Pool, logger *slog.Logger) stream.Subscription {
	if pool.Config().MaxConns <= 1 {
		logger.Info("live stream: polling the database every 0.5 s (pool_max_conns=1 leaves no connection to LISTEN on)")
		return stream.Poll(500 * time.Millisecond)
	}
	logger.Info("live stream: LISTEN/NOTIFY on channel sungrow_stored, one connection outside the pool")
	return stream.Listen(pool.Config().ConnConfig, logger)
}

// storageEvery is how often serve reads the storage sizes for /metrics: they change
// slowly, and hypertable_size walks every chunk.
const storageEvery = time.Minute

// watchStorage keeps sungrow_storage_bytes current in the background, never on the
// request path; stop ends it and waits.
func watchStorage(ctx context.Context, pool *pgxpool.Pool, m *metrics.Metrics, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		storage.Watch(ctx, pool, storageEvery, logger, func(rels []storage.Relation) {
			for _, r := range rels {
				m.StorageBytes.WithLabelValues(r.Name).Set(float64(r.Bytes))
			}
		})
	}()
	return func() { cancel(); <-done }
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
// within the shutdown timeout. onShutdown runs as shutdown begins: it ends the
// responses that never finish by themselves (streams), which Shutdown would wait for.
func listenAndServe(ctx context.Context, logger *slog.Logger, cfg config.Config, handler http.Handler, onShutdown ...func()) error {
	tlsConfig, stopTLS, err := startTLS(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopTLS()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	for _, f := range onShutdown {
		srv.RegisterOnShutdown(f)
	}
	serveErr := make(chan error, 1)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }() // the certificate comes from TLSConfig
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	logger.Info("serving", "addr", ln.Addr().String(), "scheme", scheme)

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

// realtimeCache builds the cache of GET /v1/realtime from the configuration and says
// in the log which one is in use: none (CACHE_TTL_S=0), Redis (REDIS_URL) or in
// process.
func realtimeCache(cfg config.Config, logger *slog.Logger) (*cache.Realtime, error) {
	opts := cache.Options{TTL: cfg.CacheTTL, Logger: logger}
	switch {
	case cfg.CacheTTL <= 0:
		logger.Info("realtime cache: off (CACHE_TTL_S=0), every read queries the database")
		return nil, nil
	case cfg.RedisURL != "":
		cache.RouteRedisLogs(logger)
		rc, err := cache.NewRedis(cfg.RedisURL, opts)
		if err != nil {
			return nil, err
		}
		logger.Info("realtime cache: redis", "ttl", cfg.CacheTTL.String(), "redis", redactedRedis(cfg.RedisURL))
		return rc, nil
	default:
		logger.Info("realtime cache: in-process (REDIS_URL unset; each instance caches on its own)", "ttl", cfg.CacheTTL.String())
		return cache.NewMemory(opts), nil
	}
}

// redactedRedis is the Redis URL without its password, fit for a log line.
func redactedRedis(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// startHomeAssistant starts the MQTT bridge. It does not wait for the broker: serve
// starts, and ingest works, whether the broker is there or not.
func startHomeAssistant(ctx context.Context, cfg config.Config, logger *slog.Logger, m *metrics.Metrics,
	store *telemetry.Store, seriesReader httpapi.SeriesReader, registry *devices.Registry) (*homeassistant.Bridge, error) {
	energy, ok := seriesReader.(homeassistant.EnergyReader)
	if !ok {
		return nil, errors.New("home assistant: the series service gives no energy totals")
	}
	return homeassistant.Start(ctx, homeassistant.Options{
		URL:             cfg.MQTTURL,
		DiscoveryPrefix: cfg.MQTTDiscoveryPrefix,
		TopicPrefix:     cfg.MQTTTopicPrefix,
		MinInterval:     cfg.MQTTMinInterval,
		Version:         versionText(),    // sw_version names the commit too
		Devices:         registry.Devices, // a device whose tokens are all revoked leaves Home Assistant
		Samples:         store,
		Energy:          energy,
		Logger:          logger,
		Metrics:         m,
	})
}
