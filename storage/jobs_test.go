package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/storage"
)

// scheduledJobs counts the sungrow jobs that are and are not scheduled.
func scheduledJobs(t *testing.T, conn db.DBTX) (scheduled, paused int) {
	t.Helper()
	timescale, err := db.New(conn).TimescaleInstalled(context.Background())
	if err != nil {
		t.Fatalf("check for timescaledb: %v", err)
	}
	if !timescale {
		return 0, 0
	}
	jobs, err := db.New(conn).SungrowJobs(context.Background())
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	for _, j := range jobs {
		if j.Scheduled {
			scheduled++
		} else {
			paused++
		}
	}
	return scheduled, paused
}

func TestWithJobsPausedSchedulesThemAgainAlsoWhenItFails(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		want := 0
		if d.Timescale {
			want = 4 // three refresh policies and compression
		}
		s, p := scheduledJobs(t, d.Pool)
		is.Equal([]int{s, p}, []int{want, 0})

		var lines []string
		report := func(l string) { lines = append(lines, l) }
		failure := errors.New("the change failed")
		err := storage.WithJobsPaused(ctx, d.Pool, report, func() error {
			s, p := scheduledJobs(t, d.Pool)
			is.Equal([]int{s, p}, []int{0, want}) // none may start meanwhile
			return failure
		})
		is.True(errors.Is(err, failure))
		s, p = scheduledJobs(t, d.Pool)
		is.Equal([]int{s, p}, []int{want, 0})
		if d.Timescale {
			is.Equal(len(lines), 2) // paused ..., resumed ...
		} else {
			is.Equal(len(lines), 0) // plain PostgreSQL has no jobs
		}
	})
}
