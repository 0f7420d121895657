package feeds

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// aheadQueries is how many range queries a continuous read keeps in
// flight per shard. One query at a time left a catch-up read waiting on
// Cassandra's round trips: while the merge passes one shard's rows (a
// stream written before the others fills a shard's log alone for a
// while), the others' fetches sit on a decoded batch and only that
// shard's single query runs.
const aheadQueries = 4

// aheadBatches is the batches of selected events one range reads. Each
// query costs Cassandra a fixed part (finding the slice in the segment's
// partition): ranges of two batches read the log with about a fifth less
// of its CPU than ranges of one, at the same server CPU; at four, the
// server's collector works more than Cassandra saves (docs/benchmarks.md,
// Session 14).
const aheadBatches = 2

// ahead reads, for a continuous read (Reader.Pages), the rows from fe.next
// up to the last_seq the last query saw (known committed: the log has no
// holes) in ranges of about aheadBatches batches of selected events,
// aheadQueries of them at once, and sends them to the merge in log order. read is false
// when there is too little known ahead to be worth it (then the caller
// queries one chunk, which also finds the log's end and its floor).
func (fe *fetch) ahead(ctx context.Context, send func(batch) bool) (read bool, err error) {
	rows := fe.r.rows
	g := shardlog.Segment(fe.next, rows)
	if fe.events == 0 || fe.skip > 0 || fe.knownSeg != g {
		return false, nil // the first query reads the row a position is inside
	}
	last := min(fe.known, (g+1)*rows)
	// About aheadBatches batches of selected events a range, and at most
	// ChunkBytes of decoded records over the ranges in flight (rows of
	// large events are few events each; counted decoded, since a record
	// of compressible events is stored in far fewer bytes than a range
	// holds once read).
	per := int64(min(fe.r.o.PageSize, max(1, ceilDiv(aheadBatches*fe.batch*fe.rows, fe.events))))
	if fe.recBytes > 0 {
		per = min(per, max(1, int64(fe.r.o.ChunkBytes)*int64(fe.rows)/(aheadQueries*fe.recBytes)))
	}
	if last-fe.next+1 < 2*per {
		return false, nil
	}
	// A range read's panic cancels ctx (the loop below returns) and is
	// raised by Wait.
	reads, ctx := fanout.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer reads.Wait()
	defer cancel()
	type result struct {
		rows  []row
		bytes int64
		err   error
	}
	var pending []chan result
	from := fe.next
	launch := func() {
		through := min(last, from+per-1)
		c := make(chan result, 1)
		pending = append(pending, c)
		lo := from // launch moves from on
		reads.Go(func() {
			rs, n, err := fe.readRange(ctx, g, lo, through)
			c <- result{rs, n, err}
		})
		from = through + 1
	}
	for len(pending) < aheadQueries && from <= last {
		launch()
	}
	for len(pending) > 0 {
		var res result
		select {
		case res = <-pending[0]:
		case <-ctx.Done():
			return true, fmt.Errorf("read feed: %w", ctx.Err())
		}
		pending = pending[1:]
		if res.err != nil {
			return true, res.err
		}
		if from <= last {
			launch()
		}
		for i := range res.rows {
			fe.eventsLeft -= len(res.rows[i].sel)
			fe.events += len(res.rows[i].sel)
		}
		fe.rows += len(res.rows)
		fe.recBytes += res.bytes
		fe.rowsLeft -= len(res.rows)
		fe.next += int64(len(res.rows))
		fe.lastTime = res.rows[len(res.rows)-1].time
		if !send(batch{rows: res.rows}) {
			return true, fmt.Errorf("read feed: %w", ctx.Err())
		}
	}
	return true, nil
}

// readRange reads and decodes rows from..through of segment g, all
// committed, and returns them with their records' decoded bytes. A row missing is
// looked for once more: the last_seq that showed it committed may have
// come from a replica that applied its commit before the ones this query
// asked (a Paxos commit in progress).
func (fe *fetch) readRange(ctx context.Context, g, from, through int64) ([]row, int64, error) {
	out := make([]row, 0, through-from+1)
	next, bytes := from, int64(0)
	for attempt := 0; ; attempt++ {
		err := fe.r.log.CommittedRows(ctx, fe.shard, g, next-1, through, int(through-next+1), func(lr shardlog.Row) error {
			if lr.Seq != next {
				return fmt.Errorf("shard %d: %w: log row %d missing, row %d follows", fe.shard, log.ErrUnavailable, next, lr.Seq)
			}
			rw, err := decodeRow(fe.shard, g, lr, 0, fe.f, fe.pool, true)
			if err != nil {
				return err
			}
			next++
			bytes += int64(recordBytes(lr.Record))
			out = append(out, rw)
			return nil
		})
		switch {
		case err != nil && (attempt > 0 || !errors.Is(err, log.ErrUnavailable)):
			return nil, 0, err
		case next > through:
			return out, bytes, nil
		case attempt > 0:
			return nil, 0, fmt.Errorf("shard %d: %w: log row %d is committed but was not read", fe.shard, log.ErrUnavailable, next)
		}
	}
}
