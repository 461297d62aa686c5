package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/db"
)

// openPool connects to the configuration's database and checks that it answers.
// settings are session settings (name, value) set on every connection, e.g. sungrow.tz
// for migrations.
func openPool(ctx context.Context, c config.Config, settings ...db.SetConfigParams) (*pgxpool.Pool, error) {
	return openPoolPrintingNotices(ctx, c, nil, settings...)
}

// openPoolPrintingNotices is openPool whose connections print sungrow's own NOTICE
// messages (a migration's progress, "sungrow_rollup: ...") to notices, when it is not
// nil; the server's and TimescaleDB's notices stay unprinted.
func openPoolPrintingNotices(ctx context.Context, c config.Config, notices io.Writer, settings ...db.SetConfigParams) (*pgxpool.Pool, error) {
	if err := c.RequireDatabase(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if notices != nil {
		cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Severity == "NOTICE" && strings.HasPrefix(n.Message, "sungrow") {
				fmt.Fprintln(notices, n.Message)
			}
		}
	}
	// A search_path in the URL travels as a startup parameter, which some servers
	// ignore (PGlite, the TimescaleDB server of the tests) or refuse (PgBouncer); setting
	// it again on each new connection makes it hold everywhere.
	if searchPath := cfg.ConnConfig.RuntimeParams["search_path"]; searchPath != "" {
		settings = append(settings, db.SetConfigParams{Name: "search_path", Value: searchPath})
	}
	if len(settings) > 0 {
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			for _, s := range settings {
				if err := db.New(conn).SetConfig(ctx, s); err != nil {
					return fmt.Errorf("set %s: %w", s.Name, err)
				}
			}
			return nil
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}
