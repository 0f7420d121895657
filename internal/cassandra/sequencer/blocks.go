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
// the queue reaches it; so is one whose fill opened a bucket, for the last
// block of the bucket it closed (streams.Store.CompactClosed). Compaction is an optimisation of later replays,
// safe whoever runs it and whenever (streams.BlockEvents says why), so a
// job dropped when the queue is full, or lost when the instance stops,
// only leaves that block as rows; the next block the stream completes
// compacts it too (a job takes blockLookBack blocks before the ones its
// fill crossed, and no more: a block that cannot be rewritten has its
// rows read by each job that takes it).
type blocks struct {
	store   *streams.Store
	logger  *slog.Logger
	metrics *metrics
	jobs    chan blockJob
	stop    chan struct{}
	done    sync.WaitGroup
}

// blockJob is a bucket's blocks from..upTo to compact, or, closed, the
// last blocks of the bucket before bucket, which opened at version from
// (streams.Store.CompactClosed).
type blockJob struct {
	stream             log.StreamID
	bucket, from, upTo int64
	closed             bool
}

// blockLookBack is how many blocks before the first its fill crossed a
// job takes again.
const blockLookBack = 2

// blockEventBytes: a stream whose chunks average more per event is not
// queued: 256 of its events would pass streams' limit on a block, and
// its rows are few and large already.
const blockEventBytes = 4 << 10

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
		payload := 0
		for i := range w[:n] {
			payload += w[i].Payload
		}
		w = w[n:]
		if first.OpensBucket && first.FirstVersion > 1 {
			// The bucket before is closed: its last block, partial, is
			// complete now. (Its events' size is not these chunks'.)
			b.queue(blockJob{stream: first.Stream, bucket: first.Bucket, from: first.FirstVersion, closed: true})
		}
		events := last.LastVersion - first.FirstVersion + 1
		if last.LastVersion/streams.BlockEvents == (first.FirstVersion-1)/streams.BlockEvents || int64(payload) > events*blockEventBytes {
			continue
		}
		from := first.FirstVersion - blockLookBack*streams.BlockEvents
		b.queue(blockJob{stream: last.Stream, bucket: last.Bucket, from: from, upTo: last.LastVersion})
	}
}

// writtenRecord is written for the chunks of one record, of several
// streams (a catch-up fills a record at a time).
func (b *blocks) writtenRecord(ps []streams.Pending) {
	if b == nil {
		return
	}
	var order []log.StreamID
	by := map[log.StreamID][]streams.Pending{}
	for _, p := range ps {
		if _, ok := by[p.Stream]; !ok {
			order = append(order, p.Stream)
		}
		by[p.Stream] = append(by[p.Stream], p)
	}
	for _, s := range order {
		b.written(by[s])
	}
}

// queue adds j unless the queue is full (never waits: the fill calls
// written holding the tail's lock).
func (b *blocks) queue(j blockJob) {
	select {
	case b.jobs <- j:
	default:
		b.metrics.blocks.WithLabelValues("dropped").Inc()
	}
}

func (b *blocks) run() {
	for {
		select {
		case <-b.stop:
			return
		case j := <-b.jobs:
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			var (
				n   int
				err error
			)
			if j.closed {
				n, err = b.store.CompactClosed(ctx, j.stream, j.bucket, j.from)
			} else {
				n, err = b.store.Compact(ctx, j.stream, j.bucket, j.from, j.upTo)
			}
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
