package series

import (
	"context"
	"fmt"

	"github.com/sungrow/sungrow/db"
)

// plainLevels is every stored level of a plain PostgreSQL database, finest first: the
// rollup, once migration 8 has created it (its quarter hours are UTC-aligned), and
// its days, once migration 11 has (in the zone they are kept in).
func plainLevels(ctx context.Context, conn db.DBTX) ([]Level, error) {
	q := db.New(conn)
	present, err := q.RollupPresent(ctx)
	if err != nil {
		return nil, fmt.Errorf("look for %s: %w", RollupName, err)
	}
	if !present {
		return nil, nil
	}
	daysIn, err := rollupDailyZone(ctx, q)
	if err != nil || daysIn == nil {
		return []Level{RollupLevel{}}, err
	}
	return []Level{RollupLevel{}, RollupDailyLevel{daysIn}}, nil
}
