package cmd

import (
	"context"

	"github.com/sungrow/sungrow/db"
)

// WithMigrateHook makes `migrate up` and `down`, run with ctx, call hook before each
// step, with the jobs paused and on the command's own connection; an error it returns
// fails that step as the migration itself would have.
func WithMigrateHook(ctx context.Context, hook func(ctx context.Context, conn db.DBTX, version int64) error) context.Context {
	return context.WithValue(ctx, migrateHookKey{}, migrateHook(hook))
}
