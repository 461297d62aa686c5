package series

import (
	"context"
	"fmt"
	"time"

	"github.com/sungrow/sungrow/db"
)

// plainLevels is every stored level of a plain PostgreSQL database: the rollup, once
// migration 8 has created it (its quarter hours are UTC-aligned: loc plays no part).
func plainLevels(ctx context.Context, conn db.DBTX, loc *time.Location) ([]Level, error) {
	present, err := db.New(conn).RollupPresent(ctx)
	if err != nil {
		return nil, fmt.Errorf("look for %s: %w", RollupName, err)
	}
	if !present {
		return nil, nil
	}
	return []Level{RollupLevel{}}, nil
}
