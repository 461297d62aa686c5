package homeassistant

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/series"
)

func TestStateIsSentAtMostOncePerWindowAndTheLastIsNeverLost(t *testing.T) {
	is := is.New(t)
	b := &Bridge{opts: Options{MinInterval: 5 * time.Second}, devices: map[string]*device{}, wake: make(chan struct{}, 1)}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	due := func(s float64) ([]string, time.Duration) {
		var next time.Duration
		ids := b.due(at.Add(time.Duration(s*float64(time.Second))), &next)
		return ids, next
	}

	b.Stored("a", at)
	ids, next := due(0) // the first after a quiet spell goes at once
	is.Equal(ids, []string{"a"})
	is.Equal(next, time.Duration(0))

	b.Stored("a", at)
	b.Stored("a", at)
	b.Stored("b", at)
	ids, next = due(1) // a waits for its window; b has none open
	is.Equal(ids, []string{"b"})
	is.Equal(next, 4*time.Second)

	ids, next = due(4.9)
	is.Equal(len(ids), 0)
	is.Equal(next, 100*time.Millisecond)

	ids, _ = due(5) // the window's end sends what came in it, once
	is.Equal(ids, []string{"a"})
	ids, next = due(20)
	is.Equal(len(ids), 0) // nothing new: nothing sent, nothing scheduled
	is.Equal(next, time.Duration(0))
}

func TestStaleTotalsFollowWhenTheirEnergyWindowEnds(t *testing.T) {
	is := is.New(t)
	b := &Bridge{opts: Options{MinInterval: 5 * time.Second}, devices: map[string]*device{}, wake: make(chan struct{}, 1)}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	due := func(s float64) ([]string, time.Duration) {
		var next time.Duration
		ids := b.due(at.Add(time.Duration(s*float64(time.Second))), &next)
		return ids, next
	}
	// The totals were read at 0 and took 1.5 s: the next read may come at 30 s.
	b.Stored("a", at)
	d := b.devices["a"]
	d.hasEnergy, d.energyNext = true, at.Add(30*time.Second)

	ids, _ := due(0) // the state goes at once, with the totals read before
	is.Equal(ids, []string{"a"})
	ids, next := due(6) // the state is current; the totals wait for their window
	is.Equal(len(ids), 0)
	is.Equal(next, 24*time.Second)
	ids, _ = due(30) // then a state with fresh totals follows by itself
	is.Equal(ids, []string{"a"})
	d.stale = false // as readEnergy does
	ids, next = due(60)
	is.Equal(len(ids), 0)
	is.Equal(next, time.Duration(0))
}

func TestMonotoneKeepsTotalsFromWobblingDownButNotFromAReset(t *testing.T) {
	is := is.New(t)
	top := series.Energy{PVKWh: 1000, LoadKWh: 800, GridImportKWh: 0, GridExportKWh: 50}
	next := series.Energy{
		PVKWh:         1000 * (1 - 1e-13), // the same sum in another order
		LoadKWh:       800.5,              // grew
		GridImportKWh: 0,
		GridExportKWh: 20, // samples deleted: a real reset
	}
	got := monotone(next, top)
	is.Equal(got.PVKWh, 1000.0)
	is.Equal(got.LoadKWh, 800.5)
	is.Equal(got.GridImportKWh, 0.0)
	is.Equal(got.GridExportKWh, 20.0)
}

func TestSlugsAreTopicSafeStableAndDistinct(t *testing.T) {
	is := is.New(t)
	is.Equal(slug("inverter-01"), "inverter-01")
	is.Equal(slug("Roof/West #2"), slug("Roof/West #2"))
	seen := map[string]string{}
	for _, id := range []string{"a", "A", "a/b", "a+b", "a#b", "a_b", "é", "ü", "x y"} {
		s := slug(id)
		for _, r := range s {
			is.True(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}
		if other, dup := seen[s]; dup {
			t.Errorf("%q and %q share the slug %q", id, other, s)
		}
		seen[s] = id
	}
}
