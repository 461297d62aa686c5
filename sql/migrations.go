// Package sql carries sungrow's schema migrations (the goose .sql files beside this
// file, embedded in the binary) and runs them through goose under a session advisory
// lock, so two instances migrating at once cannot collide.
package sql

import (
	stdsql "database/sql"
	"embed"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrations that create the series aggregates (empty, WITH NO DATA: a refresh cannot
// run inside their transaction), so `sungrow migrate` materializes them afterwards.
const (
	AggregatesVersion       = 2 // 00002_aggregates.sql
	EnergyAggregatesVersion = 4 // 00004_energy.sql, whose Down rebuilds version 2's views
)

// BuildsAggregates reports whether applying migration version creates the aggregates.
func BuildsAggregates(version int64) bool {
	return version == AggregatesVersion || version == EnergyAggregatesVersion
}

//go:embed *.sql
var migrations embed.FS

// NewMigrator returns a goose provider over the embedded migrations. It uses one
// connection of db for the lock and the migrations both.
func NewMigrator(db *stdsql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}
