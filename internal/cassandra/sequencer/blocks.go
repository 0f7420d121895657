package sequencer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// blocks rewrites streams' complete blocks as one row each
// (streams.Store.Compact) behind the fill, on one goroutine of its own: a
// stream whose fill crossed a block's end is queued, and compacted once
// the queue reaches it. Compaction is an optimisation of later replays,
// safe whoever runs it and whenever (streams.BlockEvents says why), so a
// job dropped when the queue is full, or lost when the instance stops,
// only leaves that block as rows; the next block the stream completes
// compacts it too (Compact takes every complete block up to a version).
type blocks struct {
	store   *streams.Store
	logger  *slog.Logger
	metrics *metrics
	jobs    chan blockJob
	stop    chan struct{}
	done    sync.WaitGroup
}

type blockJob struct {
	stream       log.StreamID
	bucket, upTo int64
}

// blockQueue bounds the jobs waiting: at 256 events a block, a full queue
// is more than 250,000 events behind.
const blockQueue = 1024

func newBlocks(store *streams.Store, logger *slog.Logger, m *metrics) *blocks {
	b := &blocks{store: store, logger: logger, metrics: m, jobs: make(chan blockJob, blockQueue), stop: make(chan struct{})}
	b.done.Go(b.run)
	return b
}

// written is told the chunks of one stream the fill has just written, in
// version order: when those of a bucket end past a block's end, the
// stream's bucket is queued.
func (b *blocks) written(w []streams.Pending) {
	if b == nil {
		return
	}
	for len(w) > 0 {
		n := 1
		for n < len(w) && w[n].Bucket == w[0].Bucket {
			n++
		}
		first, last := &w[0], &w[n-1]
		w = w[n:]
		if last.LastVersion/streams.BlockEvents == (first.FirstVersion-1)/streams.BlockEvents {
			continue
		}
		select {
		case b.jobs <- blockJob{last.Stream, last.Bucket, last.LastVersion}:
		default:
			b.metrics.blocks.WithLabelValues("dropped").Inc()
		}
	}
}

func (b *blocks) run() {
	for {
		select {
		case <-b.stop:
			return
		case j := <-b.jobs:
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			n, err := b.store.Compact(ctx, j.stream, j.bucket, j.upTo)
			cancel()
			switch {
			case err != nil:
				b.metrics.blocks.WithLabelValues("failed").Inc()
				b.logger.Warn("compact stream blocks", "stream", j.stream, "bucket", j.bucket, "err", err)
				// A node in trouble: do not add to it at once.
				select {
				case <-b.stop:
					return
				case <-time.After(time.Second):
				}
			case n > 0:
				b.metrics.blocks.WithLabelValues("compacted").Add(float64(n))
			}
		}
	}
}

// close stops the goroutine (a compaction in flight finishes).
func (b *blocks) close() {
	if b == nil {
		return
	}
	close(b.stop)
	b.done.Wait()
}
