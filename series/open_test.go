package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/series"
)

func TestOpenChoosesThePath(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	tests := []struct {
		builtIn string
		serveIn *time.Location
		want    series.Path
	}{
		{"UTC", time.UTC, series.PathAggregates},
		{"Europe/Brussels", load("Europe/Brussels"), series.PathAggregates},
		{"UTC", load("Europe/Brussels"), series.PathHourlyRollup},
		{"Asia/Kolkata", load("Asia/Kolkata"), series.PathRaw}, // UTC hours straddle its midnights
		{"UTC", load("Asia/Kolkata"), series.PathRaw},
	}
	for _, tt := range tests {
		t.Run(tt.builtIn+" served in "+tt.serveIn.String(), func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			d := testenv.NewEmpty(t, testenv.TimescaleDB)
			// The TimescaleDB test server has one connection: the setting holds for the migration.
			is.NoErr(db.New(d.Pool).SetConfig(ctx, db.SetConfigParams{Name: "sungrow.tz", Value: tt.builtIn}))
			testenv.Migrate(t, d.Pool)
			_, info, err := series.Open(ctx, d.Pool, tt.serveIn)
			is.NoErr(err)
			is.Equal(info.AggregateZone, tt.builtIn)
			is.Equal(info.Path, tt.want)
		})
	}
	t.Run("plain PostgreSQL", func(t *testing.T) {
		is := is.New(t)
		d := testenv.New(t, testenv.Postgres)
		for _, zone := range []string{"UTC", "Europe/Brussels", "Asia/Kolkata", "Asia/Kathmandu"} {
			_, info, err := series.Open(context.Background(), d.Pool, load(zone))
			is.NoErr(err)
			is.Equal(info.Path, series.PathRollup) // 15 minutes nest in every zone in use
		}
	})
}
