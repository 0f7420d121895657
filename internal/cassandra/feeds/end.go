package feeds

import (
	"context"
	"errors"
	"fmt"
	"sync"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
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
	return r.shardEnd(ctx, shard, hint)
}

// End returns the cursor at the end of every shard's log as read now:
// reading on from it returns only the events committed after the read
// (from=now). A commit in flight during End may land on either side. The
// cursor is never past a log's end (last_seq is read at a quorum; a log
// only grows), so Read never refuses it.
func (r *Reader) End(ctx context.Context) (Cursor, error) {
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
		return Cursor{}, cql.ReadErr("read shard segments", err)
	}
	pos := make([]ShardPos, r.shards)
	errs := make([]error, r.shards)
	var wg sync.WaitGroup
	for s := range pos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pos[s], errs[s] = r.shardEnd(ctx, s, hints[s])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Cursor{}, err
		}
	}
	return NewCursor(pos), nil
}

// shardEnd walks shard's segments from the hint to the one the log ends
// in: a full segment's log goes on in the next, which is opened by the
// first commit into it.
func (r *Reader) shardEnd(ctx context.Context, shard int, hint int64) (ShardPos, error) {
	g, walked := hint, false
	for {
		st, err := r.log.Statics(ctx, shard, g, false)
		if err != nil {
			return ShardPos{}, err
		}
		switch {
		case !st.Exists && g == 0:
			return ShardPos{}, nil // no commit yet
		case !st.Exists && walked:
			// Segment g-1 is full and g not opened yet.
			return ShardPos{Seq: g*r.rows + 1}, nil
		case !st.Exists:
			// A hint is written only after its segment was opened; read
			// the log from its first segment rather than trust it.
			g = 0
			continue
		case st.LastSeq >= (g+1)*r.rows:
			g, walked = g+1, true
			continue
		}
		return ShardPos{Seq: st.LastSeq + 1}, nil
	}
}
