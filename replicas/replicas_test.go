package replicas_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/replicas"
)

// reads counts where reads went.
type reads struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *reads) read(target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[target]++
}

func (r *reads) count(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[target]
}

func state(set *replicas.Set) replicas.State { return set.Statuses()[0].State }

// TestReadsFollowTheStandby runs a real primary and a streaming standby of it: reads
// go to the standby while it keeps up, to the primary while its replay is paused
// (lag beyond the bound) and while it is stopped (no read fails), and to the standby
// again once it is back; nothing written goes there.
func TestReadsFollowTheStandby(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	primary := testenv.StartPostgres(t)
	pool, err := pgxpool.New(ctx, primary.URL("sungrow"))
	is.NoErr(err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE TABLE readings (n int)")
	is.NoErr(err)
	standby := primary.StartStandby(t)

	counted := &reads{n: map[string]int{}}
	set, err := replicas.Open(pool, replicas.Options{URLs: []string{standby.URL("sungrow")}, MaxLag: 500 * time.Millisecond,
		Every: 50 * time.Millisecond, Read: counted.read})
	is.NoErr(err)
	defer set.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); set.Run(runCtx) }()
	defer func() { stop(); <-done }()

	readings := func() int {
		t.Helper()
		var n int
		is.NoErr(set.DBTX().QueryRow(ctx, "SELECT count(*) FROM readings /* the read */").Scan(&n))
		return n
	}
	insert := func() {
		t.Helper()
		_, err := set.DBTX().Exec(ctx, "INSERT INTO readings VALUES (1)") // a write: the primary's
		is.NoErr(err)
	}

	testenv.Await(t, "the standby to be usable", 30*time.Second, func() bool { return state(set) == replicas.Usable })
	insert()
	testenv.Await(t, "the standby to replay the insert", 10*time.Second, func() bool { return readings() == 1 })
	is.True(counted.count("replica") > 0)
	is.True(strings.Contains(standby.Log(t), "SELECT count(*) FROM readings /* the read */")) // it ran there

	// Replay paused: the standby falls behind as the primary writes; reads leave it.
	paused, err := pgxpool.New(ctx, standby.URL("sungrow"))
	is.NoErr(err)
	defer paused.Close()
	_, err = paused.Exec(ctx, "SELECT pg_wal_replay_pause()")
	is.NoErr(err)
	insert()
	testenv.Await(t, "the paused standby to be skipped", 10*time.Second, func() bool { return state(set) == replicas.Lagging })
	before := counted.count("primary")
	is.Equal(readings(), 2) // from the primary: the standby still has 1
	is.Equal(counted.count("primary"), before+1)
	is.True(set.Statuses()[0].Lag > 500*time.Millisecond)
	_, err = paused.Exec(ctx, "SELECT pg_wal_replay_resume()")
	is.NoErr(err)
	paused.Close()
	testenv.Await(t, "the standby to catch up", 10*time.Second, func() bool { return state(set) == replicas.Usable })

	// Stopped: every read still answers, from the primary.
	standby.Stop(t)
	for range 50 {
		is.Equal(readings(), 2)
	}
	is.Equal(state(set), replicas.Down)
	standby.Start(t)
	testenv.Await(t, "the standby to be used again", 40*time.Second, func() bool { return state(set) == replicas.Usable })
	before = counted.count("replica")
	is.Equal(readings(), 2)
	is.Equal(counted.count("replica"), before+1)

	for _, line := range strings.Split(standby.Log(t), "\n") {
		if strings.Contains(line, "INSERT") || strings.Contains(line, "read-only transaction") {
			t.Errorf("the standby was asked to write: %s", line)
		}
	}
}
