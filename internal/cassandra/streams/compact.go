package streams

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// Blocks: a stream's chunks, once written, are rewritten a block at a time
// as one run row, compressed as one (record.AppendBlock), and the rows
// they replace deleted. A stream of 1-event appends otherwise keeps a row
// an event, and a replay reads and decodes each: 38,395 such events
// replayed at ~170,000 events/s where a stream of 1,000-event appends
// replays at ~2,400,000 (docs/benchmarks.md, Session 22).
//
// A block is the chunks of one bucket whose first version is in
// (j·BlockEvents, (j+1)·BlockEvents]: a function of the chunks alone, and
// chunks are a function of their records, so every compactor (an owner,
// a paused ex-owner, a retry) that compacts block j writes the same run
// at the same key, the last chunk's last version (the same chunks: two
// builds may compress them to different bytes, and either decodes to
// them). What keeps that safe with readers and writers at any moment:
//
//   - The run is written first, and the deletes (a single-partition
//     batch) only once its key's row is read back holding the block: a
//     reader sees the rows, both, or the run, and rows that
//     overlap are read once each chunk anyway (rowReader).
//   - Only rows that lie wholly inside the block are deleted, each range
//     at the largest write timestamp among the rows read in it: a row
//     written later at a key in a range, longer than the one read there
//     (it reaches back into an earlier block), has a later timestamp
//     (rowTimestamp) and survives. A later row that a range tombstone does
//     shadow is never a chunk's only copy: the compactor first checks that
//     the rows hold every version from the bucket's first to the block's
//     end, so the earlier chunks of such a row were written already, in
//     rows outside the ranges or in runs.
//   - A run key is never inside a range: ranges stop short of the block's
//     last chunk, and another block's run is at its own last chunk, which
//     no other block's range reaches.
//   - All of it rests on every row's write timestamp being at least
//     rowTimestamp of its time and events: a block holding a row written
//     below it (a copy that did not keep write times) is left as it is.
//     A row above it (one repaired by `server verify --repair`, one past
//     its corrupt cell's timestamp: package repair) is taken: the ranges
//     go to its timestamp, and when it is at the run's key, holding fewer
//     chunks, the run goes above it (runTimestamp). A row's timestamp
//     there is the largest of its cells' (a first_version cell stamped
//     above record would outlive both: TestCompactCellAboveRecord).
//   - Readers that passed a block's end before its run was written find
//     the versions the deleted rows held in the run (rowReader: a bounded
//     forward read reads on past its bound, a backward read fills a gap
//     from the row holding the missing version).
//   - The run's write timestamp is rowTimestamp of its last chunk and its
//     events, at least that of any row at its key holding fewer of the
//     block's chunks, so it replaces the one-chunk row there; a row at
//     that key holding more (a run reaching back) wins and holds the
//     block whole. A repaired row read at the key puts the run above
//     every timestamp a fill gives the key (runTimestamp).
//
// Only partitions whose client ids are in their static row (low_ids_from
// set, migration 0005 on) are compacted: before it a chunk row's ids
// column held its ids, which a run does not carry.
const BlockEvents = 256

// maxBlockBytes bounds a block's plain bodies (what a reader holds to
// decode it): a block of large events is left as its rows, which are few
// and large already.
const maxBlockBytes = 1 << 20

const (
	cqlBucketFirst = `SELECT first_version FROM stream_buckets WHERE stream = ? AND bucket = ?`
	cqlBucketsTo   = `SELECT bucket, first_version FROM stream_buckets WHERE stream = ? AND bucket <= ? LIMIT 2`
	// The rows' versions, without their bodies, and the static
	// low_ids_from.
	cqlRowKeys = `SELECT first_version, last_version, low_ids_from FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
	// The write timestamp of each cell a run writes, not only record's: a
	// cell written above the others (stamped with the wall clock) would
	// outlive a delete or a run that reached record's alone.
	cqlRowBody = `SELECT first_version, last_version, time, shard_seq, record, WRITETIME(first_version), WRITETIME(time), WRITETIME(shard_seq), WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
	cqlKeyRow  = `SELECT first_version FROM stream_events WHERE stream = ? AND bucket = ? AND last_version = ?`
	cqlDelRows = `DELETE FROM stream_events USING TIMESTAMP ? WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
)

// Compact rewrites each complete block of stream's bucket that ends in
// from..upTo and is held in more than one row as one run row (see
// BlockEvents), and returns how many it rewrote. A block is complete when
// the rows hold every version from the bucket's first through the block's
// last chunk. The caller bounds from: a block that cannot be rewritten (a
// gap before it, or past maxBlockBytes) has its rows read again by every
// call that takes it.
func (s *Store) Compact(ctx context.Context, stream log.StreamID, bucket, from, upTo int64) (int, error) {
	return s.compact(ctx, stream, bucket, 0, from, upTo, 0)
}

// CompactClosed rewrites the last blocks of the stream's bucket before
// next, closed once next was opened at version nextFirst (nothing when
// the index does not say so): its last block, partial as a rule, and the
// closedLookBack before it (see Compact). A stream whose buckets hold
// fewer than BlockEvents events each (one that takes a few appends a day,
// in daily buckets) would otherwise keep a row an append in every bucket.
func (s *Store) CompactClosed(ctx context.Context, stream log.StreamID, next, nextFirst int64) (int, error) {
	// next and the bucket before it: closed only if next is indexed as
	// opened at nextFirst.
	iter := s.session.Query(cqlBucketsTo, string(stream), next).WithContext(ctx).Idempotent(true).Iter()
	var (
		b, first int64
		found    [][2]int64 // bucket, first version
	)
	for iter.Scan(&b, &first) {
		if len(found) == 0 && (b != next || first != nextFirst) {
			break
		}
		found = append(found, [2]int64{b, first})
	}
	if err := iter.Close(); err != nil {
		return 0, cql.ReadErr("read buckets", err)
	}
	// A bucket of one version is one row: nothing to rewrite (a stream
	// appended less often than its buckets are wide).
	if len(found) < 2 || nextFirst-found[1][1] < 2 {
		return 0, nil
	}
	prev, f0, last := found[1][0], found[1][1], nextFirst-1
	return s.compact(ctx, stream, prev, f0, last-closedLookBack*BlockEvents, last, last)
}

// closedLookBack is how many blocks before a closed bucket's last
// CompactClosed takes again, as the fill's jobs do (sequencer).
const closedLookBack = 2

// compact is Compact; f0 is the bucket's first version (0: read it from
// the index); closed, when not 0, is the bucket's last version (its next
// bucket is open): a block ends there at the latest, and is complete when
// the rows hold every version up to it.
func (s *Store) compact(ctx context.Context, stream log.StreamID, bucket, f0, from, upTo, closed int64) (int, error) {
	if f0 == 0 {
		err := s.session.Query(cqlBucketFirst, string(stream), bucket).WithContext(ctx).Idempotent(true).Scan(&f0)
		if err == gocql.ErrNotFound {
			return 0, nil
		}
		if err != nil {
			return 0, cql.ReadErr("read bucket", err)
		}
	}
	// Which blocks are complete and worth rewriting, from the keys alone:
	// those of the blocks from..upTo, and past what the rows were last
	// seen to hold without a gap from f0 (read from f0 by every job, a
	// bucket that stays as rows cost a scan quadratic in its rows).
	type key struct{ first, last int64 }
	var (
		keys    []key
		lowFrom *int64
	)
	covered := s.covered.get(stream, bucket, f0-1)
	scanFrom := max(f0, min(covered+1, ((max(from, 1)-1)/BlockEvents)*BlockEvents+1))
	iter := s.session.Query(cqlRowKeys, string(stream), bucket, scanFrom, upTo).WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	var k key
	for iter.Scan(&k.first, &k.last, &lowFrom) {
		keys = append(keys, k)
	}
	s.keysScanned.Add(int64(len(keys)))
	if err := iter.Close(); err != nil {
		return 0, cql.ReadErr("read rows", err)
	}
	// The versions held from f0 on without a gap: rows may overlap (runs),
	// and a run that reaches back comes after the rows of its later
	// chunks. Every row holding a version past covered ends at scanFrom or
	// later, so it was read.
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.first, b.first) })
	for _, k := range keys {
		if k.first > covered+1 {
			break
		}
		covered = max(covered, k.last)
	}
	s.covered.put(stream, bucket, covered)
	if lowFrom == nil || len(keys) < 2 {
		return 0, nil
	}
	n := 0
	for j := (f0 - 1) / BlockEvents; ; j++ {
		lo, hi := max(f0, j*BlockEvents+1), (j+1)*BlockEvents
		if closed != 0 {
			if lo > closed {
				break
			}
			hi = min(hi, closed)
		}
		if hi > covered {
			break
		}
		if hi < from {
			continue
		}
		rows := 0
		for _, k := range keys {
			if k.first >= lo && k.last <= hi {
				rows++
			}
		}
		// One row or none wholly inside: the block is a run already, or
		// its chunks are large.
		if rows < 2 {
			continue
		}
		done, err := s.compactBlock(ctx, stream, bucket, lo, hi)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

// coverage remembers, by stream and bucket, the last version up to which
// a compaction found the rows holding every version from the bucket's
// first. Once true that stays true, whoever compacts: compactBlock is the
// only delete, and a row it deletes (read, or written since at a key in
// a range) holds chunks that are in the run read back before it or, before
// the block, in rows the ranges do not reach (keys below it, or rows
// reaching back, which ranges skip), so no version loses its last row.
// Anything that ever deletes rows otherwise (a stream's deletion, a
// truncation, a restore under a running server) must forget them here.
// Bounded: past coverageEntries an arbitrary entry is forgotten (its next
// job reads from the bucket's first version again).
type coverage struct {
	mu sync.Mutex
	m  map[coverKey]int64
}

type coverKey struct {
	stream log.StreamID
	bucket int64
}

const coverageEntries = 1 << 14

// get returns what is remembered for the bucket, or none.
func (c *coverage) get(stream log.StreamID, bucket, none int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[coverKey{stream, bucket}]; ok {
		return max(v, none)
	}
	return none
}

func (c *coverage) put(stream log.StreamID, bucket, v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := coverKey{stream, bucket}
	if _, ok := c.m[k]; !ok && len(c.m) >= coverageEntries {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = max(c.m[k], v)
}

// blockRow is a row read for a block: its chunks, and its write timestamp
// (the largest of its cells').
type blockRow struct {
	first, last int64
	wt          int64
	lifted      bool // wt is above rowTimestamp (a repaired row)
	parts       []record.Part
}

// compactBlock rewrites the block whose chunks start in lo..hi (lo the
// bucket's first version or just past a block): the chunk holding lo, if
// it starts before it, belongs to the block before.
func (s *Store) compactBlock(ctx context.Context, stream log.StreamID, bucket, lo, hi int64) (bool, error) {
	// Every row that holds a version of the block ends at or past lo; the
	// block's last chunk holds hi (the rows hold every version up to it),
	// and the rows ending past the chunk that holds hi start after it or
	// are runs reaching back, whose chunks are in rows before them too.
	iter := s.session.Query(cqlRowBody, string(stream), bucket, lo, int64(math.MaxInt64)).WithContext(ctx).Idempotent(true).PageSize(BlockEvents + 1).Iter()
	var (
		rows   []blockRow
		chunks = map[int64]record.Part{} // by first version
		r      blockRow
		t      time.Time
		seq    int64
		body   []byte
		rt     int64    // record's write timestamp
		ct     [3]int64 // first_version's, time's, shard_seq's
	)
	end := int64(0) // the last version of the chunk holding hi, once seen
	for iter.Scan(&r.first, &r.last, &t, &seq, &body, &ct[0], &ct[1], &ct[2], &rt) {
		if end != 0 && r.first > end {
			break
		}
		r.wt = max(rt, ct[0], ct[1], ct[2])
		if rt < rowTimestamp(t, r.last-r.first+1) {
			// Not written as this package writes rows (a restore that
			// did not keep write times?): the argument above does not
			// hold, and the block stays as it is. Above it is a
			// repaired row's (runTimestamp).
			iter.Close()
			return false, nil
		}
		r.lifted = r.wt > rowTimestamp(t, r.last-r.first+1)
		r.parts = nil
		if record.IsRun(body) {
			err := record.DecodeRun(body, r.first, r.last, func(p *record.Part) error {
				r.parts = append(r.parts, *p)
				return nil
			})
			if err != nil {
				iter.Close()
				return false, fmt.Errorf("stream %s row %d: %w", stream, r.last, err)
			}
		} else {
			r.parts = []record.Part{{Seq: seq, Time: t.UnixMilli(), FirstVersion: r.first, LastVersion: r.last, Body: body}}
		}
		// Every part of every row read is checked, not only the copy of
		// each chunk the block keeps: a corrupt row is deleted with the
		// block's others even when its chunk is copied from another row,
		// and a repair writing it again (package repair) would then race
		// the delete. A block holding a corrupt row stays as its rows.
		for i := range r.parts {
			p := &r.parts[i]
			plain, err := checkedPlain(p)
			if err != nil {
				iter.Close()
				return false, fmt.Errorf("stream %s row %d chunk at %d: %w", stream, r.last, p.FirstVersion, err)
			}
			p.Body = plain
			chunks[p.FirstVersion] = *p
			if p.FirstVersion <= hi && p.LastVersion >= hi {
				end = p.LastVersion
			}
		}
		rows = append(rows, r)
		body = nil // the parts alias it
	}
	if err := iter.Close(); err != nil {
		return false, cql.ReadErr("read rows", err)
	}
	if end == 0 {
		return false, nil // not written after all (a row deleted since?)
	}
	// The block's chunks: from the first that starts at or after lo,
	// contiguous, to the one ending at end.
	start := int64(math.MaxInt64)
	for v := range chunks {
		if v >= lo && v < start {
			start = v
		}
	}
	var parts []record.Part
	size := 0
	for v := start; v <= end; {
		p, ok := chunks[v]
		if !ok {
			return false, nil // a gap: not every chunk is written yet
		}
		// Plain bodies, checked as read: compressed together
		// (record.AppendBlock).
		parts = append(parts, p)
		size += len(p.Body)
		if size > maxBlockBytes {
			return false, nil
		}
		v = p.LastVersion + 1
	}
	if len(parts) < 2 {
		return false, nil
	}
	// The rows wholly inside the block, but the one at its key: deleted, in
	// ranges of consecutive keys that skip the rows reaching back.
	slices.SortFunc(rows, func(a, b blockRow) int { return cmp.Compare(a.last, b.last) })
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	deleted := 0
	var rlo, rhi, rts int64 // the range being built; rlo 0: none
	flush := func() {
		if rlo != 0 {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlDelRows, Idempotent: true,
				Args: []any{rts, string(stream), bucket, rlo, rhi}})
			rlo = 0
		}
	}
	for _, r := range rows {
		if r.last < start || r.last >= end {
			continue
		}
		if r.first < start {
			flush() // reaches back: kept, and no range spans it
			continue
		}
		if rlo == 0 {
			rlo, rts = r.last, r.wt
		}
		rhi, rts = r.last, max(rts, r.wt)
		deleted++
	}
	flush()
	if deleted == 0 {
		return false, nil
	}
	// The run first, then the deletes once the key's row is read back
	// holding the block (the run, or a row reaching back). In one batch, a
	// row holding fewer chunks written at the key since the read and above
	// the run (a repair, one past a corrupt cell's timestamp) kept the key
	// while the deletes took the block's other rows
	// (TestRepairInsidePausedCompaction). Read back so, the key's row
	// holds the block: a repair that reads it then writes it again from
	// its first_version.
	last := &parts[len(parts)-1]
	ts := runTimestamp(rows, start, end, last.Time)
	err := s.session.Query(cqlPutChunk, string(stream), bucket, end, start, time.UnixMilli(last.Time).UTC(), last.Seq, record.AppendBlock(nil, parts), ts).
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return false, cql.ReadErr("compact block", err) // idempotent: ReadErr maps it
	}
	var first int64
	err = s.session.Query(cqlKeyRow, string(stream), bucket, end).WithContext(ctx).Idempotent(true).Scan(&first)
	switch {
	case err == gocql.ErrNotFound:
		return false, nil
	case err != nil:
		return false, cql.ReadErr("read block row", err)
	case first > start:
		return false, nil // a shorter row holds the key: the block stays as its rows
	}
	if err := b.Exec(); err != nil {
		return false, cql.ReadErr("compact block", err)
	}
	return true, nil
}

// runTimestamp is the write timestamp of the block run of versions
// start..end whose last chunk was committed at t (Unix milliseconds),
// given the rows read for it: rowTimestamp, unless the row read at its
// key holds fewer of its chunks with a write timestamp above its own
// rowTimestamp (a repaired row: package repair writes it one past its
// corrupt cell's, which may be far above). That row would win against
// rowTimestamp, and the block would stay as its rows (once, while the
// same batch deleted the block's other rows), so the
// run goes above it and above every timestamp a fill gives that key
// (rowTimestamp of record.MaxEvents): no row written later at the key
// ties with it, and one holding more chunks loses to it, whose chunks
// before the block are in rows the ranges do not reach (the rows were
// read holding every version from the bucket's first).
func runTimestamp(rows []blockRow, start, end, t int64) int64 {
	ts := rowTimestamp(time.UnixMilli(t), end-start+1)
	for _, r := range rows {
		if r.last == end && r.first >= start && r.lifted {
			ts = max(r.wt, rowTimestamp(time.UnixMilli(t), record.MaxEvents)) + 1
		}
	}
	return ts
}

// checkedPlain is the plain body of a chunk read for a block, or an error
// wrapping record.ErrCorrupt when the body does not decode for its format
// or does not hold its chunk's versions (reads refuse it,
// rowReader.chunk). Events are counted from the lengths framing them,
// without decoding them (a tenth of the block's compression,
// record.ChunkBodyEvents).
func checkedPlain(p *record.Part) ([]byte, error) {
	plain, err := record.PlainChunkBody(p.Body)
	if err != nil {
		return nil, err
	}
	n, err := record.ChunkBodyEvents(plain)
	if err != nil {
		return nil, err
	}
	if int64(n) != p.LastVersion-p.FirstVersion+1 {
		return nil, fmt.Errorf("%w: chunk %d..%d holds %d events", record.ErrCorrupt, p.FirstVersion, p.LastVersion, n)
	}
	return plain, nil
}
