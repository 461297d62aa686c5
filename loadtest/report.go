package loadtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sungrow/sungrow/db"
)

// maxLatencies bounds the latencies kept per endpoint (a long run keeps a uniform
// sample of them), so a run of hours does not grow without bound.
const maxLatencies = 1 << 20

// endpoint collects the answers of one endpoint.
type endpoint struct {
	name string

	mu        sync.Mutex
	latencies []time.Duration
	seen      int64
	statuses  map[int]int64
	netErrors int64
	expected  map[string]int64 // fault name → failures it explains
	// unexpected counts 5xx and network errors outside every expected fault.
	unexpected int64
	skipped    int64
	rng        uint64
	// phases holds the same numbers per phase of the run (see Runner.Phase).
	phases map[string]*endpoint
}

func newEndpoint(name string) *endpoint {
	return &endpoint{name: name, statuses: map[int]int64{}, expected: map[string]int64{}, rng: 0x9e3779b97f4a7c15}
}

func (e *endpoint) skip() {
	e.mu.Lock()
	e.skipped++
	e.mu.Unlock()
}

// record counts one answer (status 0: a network error) of a request that ran from
// start to end.
func (r *Runner) record(e *endpoint, start, end time.Time, status int) {
	failed := status == 0 || status >= 500
	var fault string
	expected := false
	if failed {
		fault, expected = r.expectedFailure(start, end)
	}
	phase := e
	if name := r.phase.Load(); name != nil {
		e.mu.Lock()
		if e.phases == nil {
			e.phases = map[string]*endpoint{}
		}
		if e.phases[*name] == nil {
			e.phases[*name] = newEndpoint(e.name)
		}
		phase = e.phases[*name]
		e.mu.Unlock()
		phase.add(start, end, status, failed, expected, fault)
	}
	e.add(start, end, status, failed, expected, fault)
}

func (e *endpoint) add(start, end time.Time, status int, failed, expected bool, fault string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen++
	if len(e.latencies) < maxLatencies {
		e.latencies = append(e.latencies, end.Sub(start))
	} else {
		// Reservoir sampling: every answer has the same chance to be kept.
		e.rng ^= e.rng << 13
		e.rng ^= e.rng >> 7
		e.rng ^= e.rng << 17
		if k := e.rng % uint64(e.seen); k < maxLatencies {
			e.latencies[k] = end.Sub(start)
		}
	}
	if status == 0 {
		e.netErrors++
	} else {
		e.statuses[status]++
	}
	switch {
	case failed && expected:
		e.expected[fault]++
	case failed:
		e.unexpected++
	}
}

// EndpointReport is what one endpoint did.
type EndpointReport struct {
	Name     string
	Requests int64
	// Rate is answers per second over the run.
	Rate          float64
	P50, P99, Max time.Duration
	Statuses      map[int]int64
	NetErrors     int64
	// Expected counts 5xx and network errors inside expected faults, by fault.
	Expected   map[string]int64
	Unexpected int64
	// Skipped reads found every reader busy (the client, not the server, was the limit).
	Skipped int64
}

func (e *endpoint) report(elapsed time.Duration) EndpointReport {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep := EndpointReport{
		Name: e.name, Requests: e.seen, Rate: float64(e.seen) / elapsed.Seconds(),
		Statuses: maps.Clone(e.statuses), NetErrors: e.netErrors, Expected: maps.Clone(e.expected),
		Unexpected: e.unexpected, Skipped: e.skipped,
	}
	if n := len(e.latencies); n > 0 {
		l := slices.Clone(e.latencies)
		slices.Sort(l)
		rep.P50, rep.P99, rep.Max = l[n*50/100], l[min(n*99/100, n-1)], l[n-1]
	}
	return rep
}

// Report is the outcome of a run.
type Report struct {
	Started   time.Time
	Elapsed   time.Duration
	Endpoints []EndpointReport // ingest, realtime, series
	// BatchesAcked were answered 200; SamplesAcked is the samples in them.
	BatchesAcked, SamplesAcked int64
	// BatchesAbandoned were still failing when the drain ended; Rejected got a 4xx.
	BatchesAbandoned, Rejected, Retries int64
	Faults                              []FaultWindow
	// Phases are the same numbers for each phase of the run, in order.
	Phases []PhaseReport
	// Acked lists, by device, the time of every acknowledged sample.
	Acked map[string][]time.Time
}

func (r *Runner) report(elapsed time.Duration) Report {
	rep := Report{Started: r.started, Elapsed: elapsed}
	for _, e := range []*endpoint{r.ingest, r.realtime, r.series} {
		rep.Endpoints = append(rep.Endpoints, e.report(elapsed))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ph := range r.phases {
		end := r.started.Add(elapsed)
		if i+1 < len(r.phases) {
			end = r.phases[i+1].start
		}
		pr := PhaseReport{Name: ph.name, From: ph.start.Sub(r.started), Elapsed: end.Sub(ph.start)}
		for _, e := range []*endpoint{r.ingest, r.realtime, r.series} {
			e.mu.Lock()
			sub := e.phases[ph.name]
			e.mu.Unlock()
			if sub == nil {
				sub = newEndpoint(e.name)
			}
			pr.Endpoints = append(pr.Endpoints, sub.report(pr.Elapsed))
		}
		rep.Phases = append(rep.Phases, pr)
	}
	rep.BatchesAcked, rep.BatchesAbandoned, rep.Rejected, rep.Retries = r.batchesAcked, r.batchesAbandoned, r.rejected, r.retries
	rep.Acked = make(map[string][]time.Time, len(r.acked))
	for d, ts := range r.acked {
		rep.Acked[d] = slices.Clone(ts)
		rep.SamplesAcked += int64(len(ts))
	}
	for _, w := range r.faults {
		rep.Faults = append(rep.Faults, *w)
	}
	return rep
}

// Endpoint returns the report of the named endpoint.
func (rep Report) Endpoint(name string) EndpointReport {
	for _, e := range rep.Endpoints {
		if e.Name == name {
			return e
		}
	}
	return EndpointReport{Name: name}
}

// Unexpected is every failure nobody asked for: 5xx or network errors outside the
// expected faults, refused batches and batches never acknowledged.
func (rep Report) Unexpected() int64 {
	n := rep.Rejected + rep.BatchesAbandoned
	for _, e := range rep.Endpoints {
		n += e.Unexpected
	}
	return n
}

// PhaseReport is what the endpoints did during one phase of the run.
type PhaseReport struct {
	Name          string
	From, Elapsed time.Duration
	Endpoints     []EndpointReport
}

func (rep Report) String() string {
	var b strings.Builder
	writeEndpoints(&b, rep.Endpoints)
	for _, ph := range rep.Phases {
		fmt.Fprintf(&b, "phase %q (from %s, %s):\n", ph.Name, ph.From.Round(time.Millisecond), ph.Elapsed.Round(time.Millisecond))
		writeEndpoints(&b, ph.Endpoints)
	}
	fmt.Fprintf(&b, "ingest: %d batches (%d samples) acknowledged, %.1f samples/s, %d retries, %d refused, %d never acknowledged\n",
		rep.BatchesAcked, rep.SamplesAcked, float64(rep.SamplesAcked)/rep.Elapsed.Seconds(), rep.Retries, rep.Rejected, rep.BatchesAbandoned)
	for _, f := range rep.Faults {
		end := "still on"
		if !f.End.IsZero() {
			end = f.End.Sub(f.Start).Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "fault %q: from %s into the run, lasted %s (5xx expected: %t)\n", f.Name,
			f.Start.Sub(rep.Started).Round(time.Millisecond), end, f.Expect5xx)
	}
	return b.String()
}

func writeEndpoints(b *strings.Builder, endpoints []EndpointReport) {
	fmt.Fprintf(b, "%-9s %9s %9s %9s %9s %9s  %s\n", "endpoint", "requests", "req/s", "p50", "p99", "max", "answers")
	for _, e := range endpoints {
		var answers []string
		for _, s := range slices.Sorted(maps.Keys(e.Statuses)) {
			answers = append(answers, fmt.Sprintf("%d×%d", e.Statuses[s], s))
		}
		if e.NetErrors > 0 {
			answers = append(answers, fmt.Sprintf("%d×network error", e.NetErrors))
		}
		for _, f := range slices.Sorted(maps.Keys(e.Expected)) {
			answers = append(answers, fmt.Sprintf("(%d expected during %s)", e.Expected[f], f))
		}
		if e.Unexpected > 0 {
			answers = append(answers, fmt.Sprintf("UNEXPECTED 5xx/errors: %d", e.Unexpected))
		}
		if e.Skipped > 0 {
			answers = append(answers, fmt.Sprintf("%d skipped (readers busy)", e.Skipped))
		}
		fmt.Fprintf(b, "%-9s %9d %9.1f %9s %9s %9s  %s\n", e.Name, e.Requests, e.Rate,
			round(e.P50), round(e.P99), round(e.Max), strings.Join(answers, " "))
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Verification is what the database holds of the acknowledged samples.
type Verification struct {
	Acked, Stored int64
	// Missing were acknowledged but have no row; Duplicated have more than one.
	Missing, Duplicated int64
	Examples            []string
}

// OK says that every acknowledged sample is stored exactly once.
func (v Verification) OK() bool { return v.Missing == 0 && v.Duplicated == 0 && v.Stored == v.Acked }

func (v Verification) String() string {
	s := fmt.Sprintf("database: %d acknowledged samples, %d stored, %d missing, %d duplicated", v.Acked, v.Stored, v.Missing, v.Duplicated)
	if len(v.Examples) > 0 {
		s += " (e.g. " + strings.Join(v.Examples, "; ") + ")"
	}
	return s
}

// Verify counts, in the database conn points at, the rows of every acknowledged
// (device, ts).
func Verify(ctx context.Context, conn db.DBTX, acked map[string][]time.Time) (Verification, error) {
	var v Verification
	q := db.New(conn)
	for _, device := range slices.Sorted(maps.Keys(acked)) {
		want := map[int64]bool{} // unix µs of each acknowledged sample
		for _, ts := range acked[device] {
			want[ts.UnixMicro()] = true
		}
		all := acked[device]
		v.Acked += int64(len(want))
		for start := 0; start < len(all); start += 5000 {
			chunk := all[start:min(start+5000, len(all))]
			rows, err := q.CountSamplesAt(ctx, db.CountSamplesAtParams{DeviceID: device, Ts: chunk})
			if err != nil {
				return v, fmt.Errorf("count stored samples of %s: %w", device, err)
			}
			for _, row := range rows {
				k := row.Ts.UnixMicro()
				if _, ok := want[k]; !ok {
					continue // counted by an earlier chunk
				}
				delete(want, k)
				v.Stored++
				if row.N > 1 {
					v.Duplicated++
					v.example(fmt.Sprintf("%s at %s stored %d times", device, row.Ts.UTC().Format(time.RFC3339), row.N))
				}
			}
		}
		for k := range want {
			v.Missing++
			v.example(fmt.Sprintf("%s at %s missing", device, time.UnixMicro(k).UTC().Format(time.RFC3339)))
		}
	}
	return v, nil
}

func (v *Verification) example(s string) {
	if len(v.Examples) < 5 {
		v.Examples = append(v.Examples, s)
	}
}
