package series

import (
	"context"
	"time"

	"github.com/sungrow/sungrow/db"
)

// plainLevels are the stored levels of a database without the continuous aggregates.
// The plain-PostgreSQL rollup's level (against the raw samples) goes here; until it
// exists, series are computed from the raw samples and nothing stored needs checking.
func plainLevels(ctx context.Context, conn db.DBTX, loc *time.Location) ([]Level, error) {
	return nil, nil
}
