package repair

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// schema/schema.cql: keyspace_config, stream_buckets, stream_events.
const (
	cqlConfig      = `SELECT shards, segment_rows FROM keyspace_config WHERE id = 0`
	cqlRow         = `SELECT first_version, time, shard_seq, record, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = ? AND last_version = ?`
	cqlBucketFirst = `SELECT first_version FROM stream_buckets WHERE stream = ? AND bucket = ?`
	// The rows of the bucket ending from version v to before the row's
	// last: one holding v (first_version <= v) confirms the row's first.
	cqlRowsBefore = `SELECT first_version FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version < ?`
	// The whole row: every cell the repair checked against the log (its
	// versions, time, shard_seq) and the record rebuilt from it, so that
	// no write leaves a row with some cells alone. The client ids
	// (low_ids, low_ids_from) are the partition's, and stay as they are.
	cqlPut = `INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
)

// Outcome is what StreamRow did with a row.
type Outcome string

const (
	// Repaired: the row now holds the log's chunks of its versions.
	Repaired Outcome = "repaired"
	// Unrepairable: the log cannot give the row's chunks (Result.Reason
	// says why); nothing was written.
	Unrepairable Outcome = "unrepairable"
	// Skipped: the row is gone, or changed since it was found corrupt (a
	// compaction or a fill wrote it again); nothing was written. Verify
	// again to see whether it still is corrupt.
	Skipped Outcome = "skipped"
)

// Result is StreamRow's answer for one row.
type Result struct {
	Outcome Outcome
	// Reason says why the row was not repaired.
	Reason string
}

// maxBlockBytes is the plain bytes of a run's parts up to which it is
// written compressed as one (record.AppendBlock), as a compaction writes
// a block; a larger run is written as the fill writes one
// (record.AppendRun). Either decodes to the same chunks.
const maxBlockBytes = 1 << 20

// Repairer writes corrupt stream rows again from the shard logs of one
// keyspace.
type Repairer struct {
	session     *gocql.Session
	log         *shardlog.Log
	shards      int
	segmentRows int64
	// window is how many log rows are read at a time going back from a
	// row's shard_seq.
	window int64
	// maxRecords bounds the log records read back for one row
	// (maxLogRecords).
	maxRecords int64
	limit      Limiter // nil: none
}

// Limiter spaces the rows a Repairer reads (verify.Limiter: server
// verify's --rate, shared with its scan). Wait returns when the next row
// may be read, or with ctx's error. A unit is one row read: a shard log
// row read back (committed or not), the repaired row (read three times),
// and the rows of its bucket read to confirm its first version.
type Limiter interface {
	Wait(ctx context.Context) error
}

// wait waits for r.limit, if any, before a row is read.
func (r *Repairer) wait(ctx context.Context) error {
	if r.limit == nil {
		return nil
	}
	return r.limit.Wait(ctx)
}

// maxLogRecords is how many log records, at most, are read back from a
// row's shard_seq for its chunks: past it the row is unrepairable. A
// row's chunks are met in the records before its last one, among the
// other streams' of its shard; a million records is minutes of a busy
// shard's appends, and reading them back at 256 a read takes ~4,000
// reads.
const maxLogRecords = 1_000_000

// New reads the keyspace's shard count and segment size. limit, when not
// nil, spaces the rows the Repairer reads.
func New(ctx context.Context, session *gocql.Session, limit Limiter) (*Repairer, error) {
	r := &Repairer{session: session, log: shardlog.New(session, gocql.LocalSerial), window: 256, maxRecords: maxLogRecords, limit: limit}
	if err := session.Query(cqlConfig).WithContext(ctx).Idempotent(true).Scan(&r.shards, &r.segmentRows); err != nil {
		return nil, cql.ReadErr("read keyspace_config", err)
	}
	if r.shards < 1 || r.segmentRows < 1 {
		return nil, fmt.Errorf("repair: keyspace_config holds %d shards of %d-row segments", r.shards, r.segmentRows)
	}
	return r, nil
}

// storedRow is a stream_events row as read.
type storedRow struct {
	first int64
	time  time.Time
	seq   int64
	body  []byte
	wt    int64
}

// readRow reads the row at stream, bucket, last; ok is false when there
// is none (or only the partition's static row).
func (r *Repairer) readRow(ctx context.Context, stream log.StreamID, bucket, last int64) (row storedRow, ok bool, err error) {
	var (
		first, seq, wt *int64
		t              time.Time
		body           []byte
	)
	if err := r.wait(ctx); err != nil {
		return storedRow{}, false, err
	}
	err = r.session.Query(cqlRow, string(stream), bucket, last).WithContext(ctx).Idempotent(true).Scan(&first, &t, &seq, &body, &wt)
	if errors.Is(err, gocql.ErrNotFound) || err == nil && (first == nil || wt == nil) {
		return storedRow{}, false, nil
	}
	if err != nil {
		return storedRow{}, false, cql.ReadErr(fmt.Sprintf("read stream %s bucket %d row %d", stream, bucket, last), err)
	}
	row = storedRow{first: *first, time: t, body: body, wt: *wt}
	if seq != nil {
		row.seq = *seq
	}
	return row, true, nil
}

// StreamRow writes the row of stream at bucket and last_version last,
// which verify found corrupt holding versions first..last, again from the
// shard log (see the package doc). An error means Cassandra failed a read
// or the write (the row may or may not have been written: its content is
// right either way, and a second run finds out).
//
// Why this is safe beside running servers (streams, compact.go):
//
//   - What it writes is what the row held: the chunks of the row's
//     versions are a function of committed records (record.Chunks), so
//     the rebuilt row holds the same chunks as the corrupt one did when
//     it was written, and it is checked to decode to them before the
//     write. The write is idempotent (same key, cell and timestamp: the
//     driver may retry it), and a second repair finds the row intact and
//     skips it.
//   - A fill writing the row's key again (a paused ex-owner, a catch-up)
//     writes the same chunk at rowTimestamp, at most the corrupt cell's
//     timestamp, below the repair's: the repaired cells stay. A row at
//     the key holding more chunks (one reaching back) may win or lose
//     (its rowTimestamp is at least the repair's when the corrupt cell had
//     its own rowTimestamp): either holds the row's chunks, and the
//     chunks before them are in the rows they were written in before
//     this row was (a stream's chunks are written in version order). At
//     a tie (the same commit time, one event more) Cassandra keeps the
//     greater value of each cell: first_version is the repair's (the
//     greater), record either, so the row is the repaired one or one
//     whose record holds more than its versions, which reads refuse
//     (ErrCorrupt) and verify finds again: never one that reads without
//     a version.
//   - A compaction cannot take a block holding the corrupt row: it checks
//     every row it reads for the block (every part of each, decoded as a
//     read does), not only the copy of each chunk it keeps, and refuses
//     the block (record.ErrCorrupt) when one is corrupt. So it never
//     deletes the corrupt row, whether it reads the block before the
//     repair's write or after, and never writes a run over it. Once
//     repaired, the row's write timestamp is above rowTimestamp, and a
//     compaction that reads it takes it: its range delete goes to the
//     row's timestamp (at a tie the delete wins), and when the row is at
//     the run's key the run goes above the row and above any timestamp a
//     fill gives that key (streams' runTimestamp), so no run ties with
//     the repaired cells, nor loses to them while its batch deletes the
//     block's other rows.
//   - The write sets every cell the repair checked (first_version, time,
//     shard_seq, record) at one timestamp, so whatever shadows part of
//     the row shadows all of it: no write can leave a row with a record
//     and no versions. No chunk is ever removed, so no conditional write
//     is needed.
func (r *Repairer) StreamRow(ctx context.Context, stream log.StreamID, bucket, first, last int64) (Result, error) {
	row, ok, err := r.readRow(ctx, stream, bucket, last)
	if err != nil {
		return Result{}, err
	}
	switch {
	case !ok:
		return Result{Skipped, "the row is gone"}, nil
	case row.first != first:
		return Result{Skipped, fmt.Sprintf("the row now holds versions %d..%d", row.first, last)}, nil
	}
	if _, err := decodeRow(first, last, row.seq, row.time, row.body); err == nil {
		return Result{Skipped, "the row is no longer corrupt"}, nil
	}
	if row.seq < 1 {
		return Result{Unrepairable, "the row has no shard_seq to find its log records by"}, nil
	}
	if reason, err := r.confirmFirst(ctx, stream, bucket, first, last); err != nil || reason != "" {
		return Result{Unrepairable, reason}, err
	}
	shard := partition.ShardOf(string(stream), r.shards)
	want, reason, err := r.logChunks(ctx, shard, stream, bucket, first, last, row.seq)
	if err != nil || reason != "" {
		return Result{Unrepairable, reason}, err
	}
	if end := want[len(want)-1]; end.seq != row.seq || end.time != row.time.UnixMilli() {
		return Result{Unrepairable, fmt.Sprintf("the log's last chunk of the row (shard %d seq %d, time %d ms) is not the row's (shard_seq %d, time %d ms)",
			shard, end.seq, end.time, row.seq, row.time.UnixMilli())}, nil
	}
	body := encode(want)
	got, err := decodeRow(first, last, row.seq, row.time, body)
	if err != nil || !sameParts(got, want) {
		return Result{}, fmt.Errorf("repair: stream %s bucket %d row %d: the rebuilt row does not decode to the log's chunks (%v)", stream, bucket, last, err)
	}
	// Still the corrupt row read first? A compaction or a fill may have
	// written it since.
	now, ok, err := r.readRow(ctx, stream, bucket, last)
	if err != nil {
		return Result{}, err
	}
	if !ok || now.first != row.first || now.wt != row.wt || !bytes.Equal(now.body, row.body) {
		return Result{Skipped, "the row changed while it was repaired"}, nil
	}
	if err := r.session.Query(cqlPut, string(stream), bucket, last, first, row.time, row.seq, body, row.wt+1).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		return Result{}, cql.ReadErr(fmt.Sprintf("write stream %s bucket %d row %d", stream, bucket, last), err)
	}
	// Read back: it decodes to the log's chunks.
	back, ok, err := r.readRow(ctx, stream, bucket, last)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Skipped, "the row was deleted as it was repaired"}, nil
	}
	if back.first != first {
		return Result{Skipped, fmt.Sprintf("the row was written again as it was repaired, holding versions %d..%d", back.first, last)}, nil
	}
	got, err = decodeRow(first, last, back.seq, back.time, back.body)
	if err != nil || !sameParts(got, want) {
		return Result{}, fmt.Errorf("repair: stream %s bucket %d row %d: read back after the write, the row does not decode to the log's chunks (%v)", stream, bucket, last, err)
	}
	return Result{Outcome: Repaired}, nil
}

// confirmFirst checks the row's first_version cell, first, which the
// corrupt row's own record cannot confirm: a row rebuilt for versions
// first..last from a first_version cell changed to a later version (129
// in a block row of 1..256) would drop the versions before it, held by no
// other row, and read without an error. first is confirmed when no
// version before it can be lost: it is the stream's first version (1),
// or its bucket's (stream_buckets), or another row of the bucket holds
// version first-1 (the rows before this one hold everything up to it).
// reason, when not empty, says why it is not confirmed (the row is
// unrepairable); err is a failed read.
func (r *Repairer) confirmFirst(ctx context.Context, stream log.StreamID, bucket, first, last int64) (reason string, err error) {
	if first == 1 {
		return "", nil
	}
	var f0 int64
	if err := r.wait(ctx); err != nil {
		return "", err
	}
	err = r.session.Query(cqlBucketFirst, string(stream), bucket).WithContext(ctx).Idempotent(true).Scan(&f0)
	switch {
	case err == nil && f0 == first:
		return "", nil
	case err != nil && !errors.Is(err, gocql.ErrNotFound):
		return "", cql.ReadErr(fmt.Sprintf("read stream %s bucket %d", stream, bucket), err)
	}
	iter := r.session.Query(cqlRowsBefore, string(stream), bucket, first-1, last).WithContext(ctx).Idempotent(true).PageSize(256).Iter()
	var f *int64
	for iter.Scan(&f) {
		if f != nil && *f <= first-1 {
			iter.Close()
			return "", nil
		}
		if err := r.wait(ctx); err != nil {
			iter.Close()
			return "", err
		}
	}
	if err := iter.Close(); err != nil {
		return "", cql.ReadErr(fmt.Sprintf("read stream %s bucket %d rows before %d", stream, bucket, last), err)
	}
	return fmt.Sprintf("the row's first version %d is not confirmed (its first_version cell may be the corrupt one): it is not the bucket's first version, and no other row of the bucket holds version %d",
		first, first-1), nil
}

// encode is the body of a row of parts (in version order): a chunk's body,
// or a run of them.
func encode(parts []part) []byte {
	if len(parts) == 1 {
		return record.AppendChunkBody(nil, &parts[0].chunk)
	}
	ps := make([]record.Part, len(parts))
	for i := range parts {
		p := &parts[i]
		ps[i] = record.Part{Seq: p.seq, Time: p.time, FirstVersion: p.chunk.FirstVersion, LastVersion: p.chunk.LastVersion(),
			Body: record.AppendChunkBody(nil, &p.chunk)}
	}
	// Plain bodies, compressed together, as a compaction writes a block
	// (bodies just encoded: PlainChunkBody fails on none of them).
	block, plain := make([]record.Part, len(ps)), 0
	copy(block, ps)
	for i := range block {
		b, err := record.PlainChunkBody(block[i].Body)
		if err != nil {
			return record.AppendRun(nil, ps)
		}
		block[i].Body = b
		plain += len(b)
	}
	if plain <= maxBlockBytes {
		return record.AppendBlock(nil, block)
	}
	return record.AppendRun(nil, ps)
}
