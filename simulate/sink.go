package simulate

import (
	"context"
	"fmt"
	"time"

	"github.com/sungrow/sungrow/telemetry"
)

// Sink stores a batch of samples of one device and says how many were new.
// telemetry.Store (straight into the database) and HTTPSink (through the API) are the
// two sinks.
type Sink interface {
	Insert(ctx context.Context, deviceID string, samples []telemetry.Sample) (int64, error)
}

// Result counts what a run produced and stored.
type Result struct {
	Samples  int   // generated and handed to the sink
	Inserted int64 // new rows, as the sink reported them
	// Last is the time of the newest sample handed to the sink.
	Last time.Time
}

// Run feeds every sample of g to sink in batches of batchSize, in time order, and calls
// progress (when not nil) after each batch. It stops at the first batch the sink
// refuses; since ingest is idempotent, running the same command again resumes safely.
func Run(ctx context.Context, g *Generator, sink Sink, batchSize int, progress func(Result)) (Result, error) {
	if batchSize < 1 {
		return Result{}, fmt.Errorf("batch size %d: want at least 1", batchSize)
	}
	var res Result
	buf := make([]telemetry.Sample, 0, batchSize)
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("simulate: stopped before %s: %w", g.next.Format(time.RFC3339), err)
		}
		buf = g.Next(buf, batchSize)
		if len(buf) == 0 {
			return res, nil
		}
		n, err := sink.Insert(ctx, g.cfg.DeviceID, buf)
		if err != nil {
			return res, fmt.Errorf("store the %d samples from %s on (earlier ones are stored; running again is safe): %w",
				len(buf), buf[0].TS.Format(time.RFC3339), err)
		}
		res.Samples += len(buf)
		res.Inserted += n
		res.Last = buf[len(buf)-1].TS
		if progress != nil {
			progress(res)
		}
	}
}
