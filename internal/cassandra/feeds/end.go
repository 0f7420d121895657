package feeds

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// schema/migrations/0001_initial.cql: shards. segment is the owner's
// hint of the segment taking commits (recorded after it was opened).
const (
	cqlSegmentHints = `SELECT shard, segment FROM shards`
	cqlSegmentHint  = `SELECT segment FROM shards WHERE shard = ?`
)

// ShardEnd returns the position at the end of shard's log as read now
// (End for one shard): consumer groups check acknowledgements against it.
func (r *Reader) ShardEnd(ctx context.Context, shard int) (ShardPos, error) {
	if shard < 0 || shard >= r.shards {
		return ShardPos{}, fmt.Errorf("feeds: shard %d out of range 0..%d", shard, r.shards-1)
	}
	var segment *int64
	err := r.session.Query(cqlSegmentHint, shard).WithContext(ctx).Idempotent(true).Scan(&segment)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return ShardPos{}, cql.ReadErr("read shard segment", err)
	}
	var hint int64
	if segment != nil && *segment > 0 {
		hint = *segment
	}
	end, _, err := r.shardEnd(ctx, shard, hint)
	return end, err
}

// End returns the cursor at the end of every shard's log as read now:
// reading on from it returns only the events committed after the read
// (from=now). A commit in flight during End may land on either side. The
// cursor is never past a log's end (last_seq is read at a quorum; a log
// only grows), so Read never refuses it.
func (r *Reader) End(ctx context.Context) (Cursor, error) {
	hints, err := r.hints(ctx)
	if err != nil {
		return Cursor{}, err
	}
	pos, _, err := r.ends(ctx, hints)
	if err != nil {
		return Cursor{}, err
	}
	return NewCursor(pos), nil
}

// EndTimes returns, for each shard, the time no commit of its log is
// after as read now: the floor of the segment its log ends in, which
// every commit sets to its own time and an idle owner raises (zero for a
// log never opened, or one written before floors). A commit acknowledged
// before the read is at or before it. It is the shard's owners' clock,
// not this instance's: clocks may disagree by hours.
func (r *Reader) EndTimes(ctx context.Context) ([]time.Time, error) {
	hints, err := r.hints(ctx)
	if err != nil {
		return nil, err
	}
	_, times, err := r.ends(ctx, hints)
	return times, err
}

// hints reads every shard's segment hint.
func (r *Reader) hints(ctx context.Context) ([]int64, error) {
	hints := make([]int64, r.shards)
	iter := r.session.Query(cqlSegmentHints).WithContext(ctx).Idempotent(true).Iter()
	var (
		shard   int
		segment *int64
	)
	for iter.Scan(&shard, &segment) {
		if shard >= 0 && shard < r.shards && segment != nil && *segment > 0 {
			hints[shard] = *segment
		}
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read shard segments", err)
	}
	return hints, nil
}

// ends walks every shard's log from its hint, in parallel: its end
// position and floor (shardEnd).
func (r *Reader) ends(ctx context.Context, hints []int64) ([]ShardPos, []time.Time, error) {
	pos := make([]ShardPos, r.shards)
	floors := make([]time.Time, r.shards)
	errs := make([]error, r.shards)
	g, gctx := fanout.WithContext(ctx) // a walk's panic is raised by Wait
	for s := range pos {
		g.Go(func() {
			pos[s], floors[s], errs[s] = r.shardEnd(gctx, s, hints[s])
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return pos, floors, nil
}

// shardEnd walks shard's segments from the hint to the one the log ends
// in: a full segment's log goes on in the next, which is opened by the
// first commit into it. floor is that segment's (of the full one, when
// the next is not opened yet).
func (r *Reader) shardEnd(ctx context.Context, shard int, hint int64) (end ShardPos, floor time.Time, err error) {
	g, walked := hint, false
	for {
		st, err := r.log.Statics(ctx, shard, g, false)
		if err != nil {
			return ShardPos{}, time.Time{}, err
		}
		switch {
		case !st.Exists && g == 0:
			return ShardPos{}, time.Time{}, nil // no commit yet
		case !st.Exists && walked:
			// Segment g-1 is full and g not opened yet.
			return ShardPos{Seq: g*r.rows + 1}, floor, nil
		case !st.Exists:
			// A hint is written only after its segment was opened; read
			// the log from its first segment rather than trust it.
			g = 0
			continue
		case st.LastSeq >= (g+1)*r.rows:
			g, walked, floor = g+1, true, st.Floor
			continue
		}
		return ShardPos{Seq: st.LastSeq + 1}, st.Floor, nil
	}
}

// CheckInRow refuses (ErrFuturePosition) a position of shard inside a log
// row (Index > 0) but at or past the row's last event. Check and ShardEnd
// let it pass (they read no row), and every read from it is refused at
// that row, so a checkpoint there would stop its partition for good. A
// reader only ever hands out positions inside a row before its last event
// (after): only a token signed for another log at that seq (a leaked
// secret, a keyspace restored to an earlier state) says more. It reads the
// row, and only for a position inside one; a row that is not there is
// ErrFuturePosition too (callers place the position within the committed
// log first).
func (r *Reader) CheckInRow(ctx context.Context, shard int, p ShardPos) error {
	if p.Index == 0 {
		return nil
	}
	n, err := r.rowEvents(ctx, shard, p.row())
	if err != nil {
		return err
	}
	if p.Index >= n {
		return badPosition(ErrFuturePosition, fmt.Sprintf("position %d.%d of shard %d is past the row's events", p.row(), p.Index, shard))
	}
	return nil
}

// PastRow returns the start of the next row for a position of shard inside
// a log row at or past the row's events, and p itself for any other
// (ok false). Such a position says the whole row was delivered, so reading
// on from the next row skips nothing. Consumer groups unstick with it a
// checkpoint stored there before acks were checked with CheckInRow, which
// every read refuses. It reads the row, and only for a position inside
// one; a row that is not there leaves p as it is.
func (r *Reader) PastRow(ctx context.Context, shard int, p ShardPos) (next ShardPos, ok bool, err error) {
	if p.Index == 0 {
		return p, false, nil
	}
	n, err := r.rowEvents(ctx, shard, p.row())
	if err != nil || n < 0 || p.Index < n {
		return p, false, err
	}
	return ShardPos{Seq: p.row() + 1}, true, nil
}

// rowEvents reads log row seq of shard: its number of events, -1 when the
// row is not there.
func (r *Reader) rowEvents(ctx context.Context, shard int, seq int64) (int, error) {
	if shard < 0 || shard >= r.shards {
		return 0, fmt.Errorf("feeds: shard %d out of range 0..%d", shard, r.shards-1)
	}
	segment := shardlog.Segment(seq, r.rows)
	n := -1
	_, _, err := r.log.Rows(ctx, shard, segment, seq-1, seq, 1, func(lr shardlog.Row) error {
		if lr.Seq != seq {
			return nil
		}
		rec, err := record.DecodeRecord(lr.Record)
		if err != nil {
			return &log.CorruptError{Kind: log.CorruptLogRecord, Shard: shard, Segment: segment, Seq: lr.Seq, Err: err}
		}
		n = rec.Events()
		return nil
	})
	return n, err
}
