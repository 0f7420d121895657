package feeds

import (
	"context"
	"sync"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

// schema/migrations/0004_shard_log.cql: shards. segment is the owner's
// hint of the segment taking commits (recorded after it was opened).
const cqlSegmentHints = `SELECT shard, segment FROM shards`

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
