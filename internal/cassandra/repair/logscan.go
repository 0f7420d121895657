package repair

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// logChunks reads shard's log back from seq `from` (the row's shard_seq:
// the record of its last chunk) for the stream's chunks of versions
// first..last, in version order. reason, when not empty, says why they
// cannot be had (the row is unrepairable); err is a failed read.
//
// Only committed records are taken: a row at or below its segment's
// last_seq as read with it (shardlog.Log.Rows), as a catch-up and the
// feeds take them. A stream's chunks are committed in version order, so
// going back, the chunks are met last version first, and the first chunk
// of the stream that ends before first ends the search. At most
// r.maxRecords records are read: the row is unrepairable past them.
func (r *Repairer) logChunks(ctx context.Context, shard int, stream log.StreamID, bucket, first, last, from int64) (parts []part, reason string, err error) {
	need := last // the last version of the next chunk, going back
	scanned := int64(0)
	for hi := from; hi > 0; {
		lo := max(0, hi-r.window)
		rows, err := r.committed(ctx, shard, lo, hi)
		if err != nil {
			return nil, "", err
		}
		for i := len(rows) - 1; i >= 0; i-- {
			row := &rows[i]
			if scanned == r.maxRecords {
				return nil, fmt.Sprintf("versions %d..%d are not in the %d log records of shard %d read back from seq %d (the most read for a row)",
					first, need, scanned, shard, from), nil
			}
			scanned++
			rec, err := record.DecodeRecord(row.Record)
			if err == nil {
				err = rec.CheckNames()
			}
			if err != nil {
				return nil, fmt.Sprintf("log record shard %d segment %d seq %d (read for versions %d..%d) is corrupt: %v",
					shard, shardlog.Segment(row.Seq, r.segmentRows), row.Seq, first, need, err), nil
			}
			chunks := record.Chunks(&rec)
			for j := len(chunks) - 1; j >= 0; j-- {
				c := &chunks[j]
				if c.Stream != stream || c.FirstVersion > last {
					continue
				}
				cl := c.LastVersion()
				if cl < first {
					return nil, fmt.Sprintf("versions %d..%d are in no committed record of shard %d (the stream's chunk before them, %d..%d, is at seq %d)",
						first, need, shard, c.FirstVersion, cl, row.Seq), nil
				}
				switch {
				case cl != need:
					return nil, fmt.Sprintf("the log's chunk %d..%d (shard %d seq %d) is not the row's next chunk back, which ends at version %d",
						c.FirstVersion, cl, shard, row.Seq, need), nil
				case c.FirstVersion < first:
					return nil, fmt.Sprintf("the log's chunk %d..%d (shard %d seq %d) starts before the row's first version %d",
						c.FirstVersion, cl, shard, row.Seq, first), nil
				case c.Bucket != bucket:
					return nil, fmt.Sprintf("the log's chunk %d..%d (shard %d seq %d) is in bucket %d, not the row's",
						c.FirstVersion, cl, shard, row.Seq, c.Bucket), nil
				}
				parts = append(parts, part{seq: row.Seq, time: row.Time.UnixMilli(), chunk: *c})
				need = c.FirstVersion - 1
				if need < first {
					slices.Reverse(parts)
					return parts, "", nil
				}
			}
		}
		hi = lo
	}
	return nil, fmt.Sprintf("versions %d..%d are in no committed record of shard %d up to seq %d", first, need, shard, from), nil
}

// committed reads the committed rows of shard's log after seq lo up to hi,
// in seq order, each row read (committed or not) one unit of r.limit.
func (r *Repairer) committed(ctx context.Context, shard int, lo, hi int64) ([]shardlog.Row, error) {
	var out []shardlog.Row
	for g := shardlog.Segment(lo+1, r.segmentRows); g <= shardlog.Segment(hi, r.segmentRows); g++ {
		var rows []shardlog.Row
		lastSeq, _, err := r.log.Rows(ctx, shard, g, max(lo, g*r.segmentRows), min(hi, (g+1)*r.segmentRows), 64, func(row shardlog.Row) error {
			if err := r.wait(ctx); err != nil {
				return err
			}
			rows = append(rows, row)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("repair: shard %d segment %d: %w", shard, g, err)
		}
		for _, row := range rows {
			if row.Seq <= lastSeq {
				out = append(out, row)
			}
		}
	}
	slices.SortFunc(out, func(a, b shardlog.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}
