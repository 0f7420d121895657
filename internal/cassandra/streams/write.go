package streams

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// schema/schema.cql: stream_buckets, stream_events, stream_ids.
const (
	cqlIndexBucket = `INSERT INTO stream_buckets (stream, bucket, first_version, opened_at) VALUES (?, ?, ?, ?)`
	// A row's write timestamp is its last chunk's commit time plus its
	// events (rowTimestamp): two rows at one key end with the same chunk,
	// so the one that holds more of the chunks before it wins, whichever
	// lands last (see Runs).
	cqlPutChunk = `INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	// A row at or below LowVersions adds its client ids to the partition's
	// static low_ids (schema/migrations/0005_low_ids.cql), in the same
	// mutation; the one that opens the bucket sets low_ids_from, which
	// tells a reader that low_ids is complete.
	cqlPutLowChunk = `UPDATE stream_events USING TIMESTAMP ? SET first_version = ?, time = ?, shard_seq = ?, record = ?, low_ids = low_ids + ?, low_ids_from = ? WHERE stream = ? AND bucket = ? AND last_version = ?`
	// One statement per chunk, not per id: Cassandra's cost of a batch
	// grows with its statements (preparing each one's mutation), so a
	// 100-event append's ids took a hundred. Every id of the chunk is
	// recorded at the chunk's first version, which is all a reader needs:
	// MatchAppend reads the chunks from there, and the id filter only asks
	// which bucket an id is in.
	cqlPutIDs = `UPDATE stream_ids USING TTL ? SET version = ? WHERE stream = ? AND bucket = ? AND id IN ?`
)

// idsPerStatement bounds the ids of one cqlPutIDs statement (the
// clustering keys it builds).
const idsPerStatement = 500

// LowVersions: a chunk that ends at or below this version (a stream's
// first appends) gets no stream_ids rows. Its ids go in its partition's
// static row, in the same mutation (low_ids, about 30 bytes an id), and
// IDs and LookupIDs read that row: most streams of an event-sourced
// system are short, and a row per id was one of the fill's three
// statements for a 1-event append (docs/benchmarks.md, Session 9) and a
// second row per event for a 100-event one (Session 13: 64 → 1024 cost
// Cassandra ~7 % less per event). Those ids are then recognised beyond
// the idempotency window, as exact versions always are. Before the static
// row each chunk row listed its own (its ids column): a lookup read every
// chunk row of the stream's first 1,024 versions, and a server whose
// heads could no longer hold every id fell to a third of its rate
// (Session 17).
const LowVersions = 1024

// oldLowVersions was LowVersions before the ids column: a chunk written
// then that ends past it has stream_ids rows, one at or below it only its
// body.
const oldLowVersions = 64

// fillConcurrency bounds the partition writes one Fill has in flight.
const fillConcurrency = 32

// Store is the stream partitions of one keyspace.
type Store struct {
	session  *gocql.Session
	pageSize int
	idTTL    int // seconds
	covered  coverage
	// keysScanned counts the row keys compactions read (tests).
	keysScanned atomic.Int64
}

// New returns the stream partitions over session. pageSize is the rows per
// page of range reads; idTTL how long client ids are kept for recognising
// retries.
func New(session *gocql.Session, pageSize int, idTTL time.Duration) *Store {
	return &Store{session: session, pageSize: pageSize, idTTL: max(1, int(idTTL/time.Second)), covered: coverage{m: map[coverKey]int64{}}}
}

// Fill writes the chunks of one committed record (NewPending of each of
// record.Chunks), in the packs of Packs, in parallel. Every write is
// idempotent: the same record always writes the same rows.
func (s *Store) Fill(ctx context.Context, chunks []Pending) error {
	var (
		order []log.StreamID
		by    = map[log.StreamID][]Pending{}
	)
	for _, c := range chunks {
		if by[c.Stream] == nil {
			order = append(order, c.Stream)
		}
		by[c.Stream] = append(by[c.Stream], c)
	}
	ws := make([][]Pending, len(order))
	for i, st := range order {
		ws[i] = by[st]
	}
	packs := Packs(ws)
	return each(len(packs), func(i int) error { return s.WritePack(ctx, packs[i], nil) })
}

// Pending is a chunk of a committed record that is not yet written: the
// record's seq and commit time with the chunk, held as the rows it will
// write (its encoded body and ids). A shard's unwritten tail may hold
// seconds of appends (--fill-delay); as decoded events, with the request
// buffers their bytes point into, it took three to four times the bytes
// and a pointer an event for the garbage collector to trace on each
// cycle.
type Pending struct {
	Seq          int64
	Time         time.Time
	Stream       log.StreamID
	Bucket       int64
	FirstVersion int64
	LastVersion  int64
	OpensBucket  bool
	// Body is the chunk row's record (record.AppendChunkBody); IDs its
	// client-chosen ids (record.AppendChunkIDs); EventIDs every event's
	// id, 16 bytes each in version order (the event index).
	Body, IDs, EventIDs []byte
	// Payload is its events' type, data and metadata bytes, with 48 an
	// event: what it weighs in the tail and in a pack.
	Payload int
}

// NewPending encodes chunk c of the record committed at seq, at time t,
// into one allocation of its own that holds no pointer for the garbage
// collector to follow (a chunk of its own: once written, its bytes are
// free whatever the other chunks of its record wait for).
func NewPending(seq int64, t time.Time, c *record.Chunk) Pending {
	// An upper bound of the plain body (an id, three lengths and a flag an
	// event, a few bytes a chunk and append), the ids (a length and an id
	// an event) and the events' ids; a compressed body takes less.
	n := 16
	for i := range c.Appends {
		n += 2
		for j := range c.Appends[i].Events {
			e := &c.Appends[i].Events[j]
			n += 3*16 + 4*binary.MaxVarintLen32 + 1 + len(e.Type) + len(e.Data) + len(e.Metadata)
		}
	}
	p, _ := appendPending(make([]byte, 0, n), seq, t, c)
	return p
}

// appendPending is NewPending with the encoded bytes appended to slab,
// which it returns.
func appendPending(slab []byte, seq int64, t time.Time, c *record.Chunk) (Pending, []byte) {
	p := Pending{Seq: seq, Time: t, Stream: c.Stream, Bucket: c.Bucket, FirstVersion: c.FirstVersion,
		LastVersion: c.LastVersion(), OpensBucket: c.OpensBucket}
	start := len(slab)
	slab = record.AppendChunkBody(slab, c)
	body := len(slab)
	slab = record.AppendChunkIDs(slab, c)
	ids := len(slab)
	for _, a := range c.Appends {
		for i := range a.Events {
			e := &a.Events[i]
			slab = append(slab, e.ID[:]...)
			p.Payload += len(e.Type) + len(e.Data) + len(e.Metadata) + 48
		}
	}
	// Full slice expressions: an append to one must not write over the
	// next.
	p.Body, p.IDs, p.EventIDs = slab[start:body:body], slab[body:ids:ids], slab[ids:len(slab):len(slab)]
	return p, slab
}

// Events is how many events the chunk holds.
func (p *Pending) Events() int { return int(p.LastVersion - p.FirstVersion + 1) }

// ClientIDs calls fn with each client-chosen id of the chunk and its
// version.
func (p *Pending) ClientIDs(fn func(id uuid.UUID, version int64)) {
	// The ids were encoded by NewPending, and checked (checkIDs) before
	// any write that reads them.
	_ = record.DecodeChunkIDs(p.IDs, p.FirstVersion, fn)
}

// checkIDs checks the id lists of chunks against their checksums: a list
// changed since NewPending encoded it (memory's error) is a
// *log.CorruptError, and nothing of the chunks is written. Written
// without its ids (ClientIDs gives none of a list that does not decode),
// the chunk's append would not be recognised when retried, and written
// again.
func checkIDs(chunks []Pending) error {
	for i := range chunks {
		p := &chunks[i]
		if err := record.DecodeChunkIDs(p.IDs, p.FirstVersion, func(uuid.UUID, int64) {}); err != nil {
			return &log.CorruptError{Kind: log.CorruptChunkIDs, Stream: p.Stream, Bucket: p.Bucket, First: p.FirstVersion, Last: p.LastVersion, Err: err}
		}
	}
	return nil
}

// maxMutationBytes bounds one batch of WriteStream, well under Cassandra's
// largest mutation (half a commit log segment, 16 MiB by default).
const maxMutationBytes = 4 << 20

// WriteStream writes the chunks of one stream, in version order, in as
// few rows and mutations as it can: per bucket the index row first when a
// chunk opens it, then one single-partition batch of the bucket's rows
// (Runs: consecutive chunks share a row) with their client ids. Writing
// them again, or other rows of the same chunks (Fill writes a row per
// record and stream), loses nothing (Runs). A chunk is written only after
// every chunk before it is, so a reader never sees a gap.
//
// extra rows (of other partitions: the discovery indexes) ride in the
// first chunk batch, in the same request.
func (s *Store) WriteStream(ctx context.Context, chunks []Pending, extra []gocql.BatchEntry) error {
	if err := checkIDs(chunks); err != nil {
		return err
	}
	rows := Runs(chunks)
	for i := 0; i < len(rows); {
		c := &rows[i][0]
		if c.OpensBucket {
			err := s.session.Query(cqlIndexBucket, string(c.Stream), c.Bucket, c.FirstVersion, c.Time).
				WithContext(ctx).Idempotent(true).Exec()
			if err != nil {
				return cql.ReadErr("index bucket", err)
			}
		}
		b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		size := 0
		j := i
		for ; j < len(rows); j++ {
			p := &rows[j][0]
			if p.Bucket != c.Bucket || j > i && (p.OpensBucket || size > maxMutationBytes) {
				break
			}
			size += s.addRow(b, rows[j])
		}
		// The extra rows ride along only while the batch stays far under
		// Cassandra's batch_size_fail_threshold (50 KiB), which applies to
		// a batch of several partitions: a long stream's first batch of
		// chunks with its events' index rows was refused, and the fill
		// retried it forever.
		if i == 0 && size+extraRowBytes*extraRows(extra) <= maxPiggyBytes {
			b.Entries = append(b.Entries, extra...)
			extra = nil
		}
		var err error
		if len(b.Entries) == 1 {
			err = s.session.Query(b.Entries[0].Stmt, b.Entries[0].Args...).WithContext(ctx).Idempotent(true).Exec()
		} else {
			err = b.Exec()
		}
		if err != nil {
			return cql.ReadErr(fmt.Sprintf("write %s", c.Stream), err)
		}
		i = j
	}
	// What did not ride: batches of at most extraBatchRows rows (a few
	// partitions of index rows, well under the fail threshold), or one
	// statement alone (one partition: no threshold).
	for len(extra) > 0 {
		n, rows := 0, 0
		for n < len(extra) && (n == 0 || rows+extraRows(extra[n:n+1]) <= extraBatchRows) {
			rows += extraRows(extra[n : n+1])
			n++
		}
		b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		b.Entries = append(b.Entries, extra[:n]...)
		if err := b.Exec(); err != nil {
			return cql.ReadErr("write index rows", err)
		}
		extra = extra[n:]
	}
	return nil
}

// extraRows counts the rows es write: a statement with a list of ids
// among its arguments (`… AND id IN ? …`, package catalog) writes one per
// id. (Counting only a last argument's list took event_id_commits'
// statements, whose list comes before the seq, for a row each: batches of
// up to 200 of them, several partitions of hundreds of rows each, were
// refused as too large, and the fill retried them for ever.)
func extraRows(es []gocql.BatchEntry) int {
	n := 0
	for _, e := range es {
		rows := 1
		for _, a := range e.Args {
			if ids, ok := a.([][16]byte); ok {
				rows = max(1, len(ids))
				break
			}
		}
		n += rows
	}
	return n
}

// Extra rows in WriteStream: what one is counted as, the most bytes a
// batch of chunks takes them along to, and the rows of a batch of their
// own.
const (
	extraRowBytes  = 96
	maxPiggyBytes  = 24 << 10
	extraBatchRows = 200
)

// Cassandra's defaults for batches that span partitions:
// unlogged_batch_across_partitions_warn_threshold (10 partitions) and
// batch_size_warn_threshold (5 KiB; a batch past batch_size_fail_threshold,
// 50 KiB, is refused). A pack stays under both with room to spare (the
// size Cassandra counts adds cell timestamps, TTLs and keys to packable's
// estimate), so it should not log a warning on a node configured as
// shipped.
//
// A pack also carries the event index rows of its events (package
// catalog: one more partition, usually, and a statement per commit whose
// ids it lists), so it holds at most nine streams and packable counts
// those ids against packBytes.
const (
	packStreams = 9
	packBytes   = 3 << 10
)

// Packs splits the pending chunks of several streams (one slice per
// stream) into the writes WritePack sends. Cassandra's cost per mutation
// is mostly the request carrying it, so streams whose chunks all go into
// one bucket and are small are packed, up to packStreams and packBytes,
// into one unlogged batch: still one mutation per stream partition, but
// one request for the pack (and one more before it for the index rows of
// the buckets its streams open). A stream that spans buckets or is large
// is a pack of its own, written by WriteStream.
func Packs(ws [][]Pending) [][][]Pending {
	var (
		out  [][][]Pending
		cur  [][]Pending
		size int
	)
	for _, w := range ws {
		n, ok := packable(w)
		if !ok {
			out = append(out, [][]Pending{w})
			continue
		}
		if len(cur) == packStreams || len(cur) > 0 && size+n > packBytes {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, w)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// packable reports whether a stream's chunks may share a batch with other
// streams' and what they weigh: all in one bucket (which the first may
// open), and under packBytes.
func packable(w []Pending) (int, bool) {
	n := 0
	for i := range w {
		c := &w[i]
		if c.OpensBucket && i > 0 || c.Bucket != w[0].Bucket {
			return 0, false
		}
		n += 64 + len(c.Stream)
		if c.OpensBucket {
			n += 64 + len(c.Stream) // the index row
		}
		n += c.Payload + 16*c.Events() // each event, and its id in the commit's id index statement
		if c.LastVersion > LowVersions {
			c.ClientIDs(func(_ uuid.UUID, v int64) {
				n += 40 + len(c.Stream) // a stream_ids row each
				if v <= LowVersions {
					n += 30 // and, in a chunk that crosses LowVersions, a cell in low_ids
				}
			})
		} else {
			n += 2 * len(c.IDs) // the chunk's cells in low_ids, ~30 bytes an id
		}
	}
	return n, n <= packBytes
}

// WritePack writes one pack of Packs: a lone stream with WriteStream,
// several in one unlogged batch of each stream's rows (Runs) and id rows,
// the rows WriteStream writes for them. As in WriteStream, the index rows of
// the buckets the pack opens are written first, so that a reader never
// finds a chunk of a bucket the index does not name (a pack that fails
// between the two leaves at most an empty indexed bucket, written again
// by the retry). extra rows (the discovery indexes of the pack's events)
// go in the chunks' request.
func (s *Store) WritePack(ctx context.Context, pack [][]Pending, extra []gocql.BatchEntry) error {
	if len(pack) == 1 {
		return s.WriteStream(ctx, pack[0], extra)
	}
	for _, w := range pack {
		if err := checkIDs(w); err != nil {
			return err
		}
	}
	idx := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for _, w := range pack {
		if c := &w[0]; c.OpensBucket {
			idx.Entries = append(idx.Entries, gocql.BatchEntry{Stmt: cqlIndexBucket, Idempotent: true,
				Args: []any{string(c.Stream), c.Bucket, c.FirstVersion, w[0].Time}})
		}
	}
	var err error
	switch len(idx.Entries) {
	case 0:
	case 1:
		err = s.session.Query(cqlIndexBucket, idx.Entries[0].Args...).WithContext(ctx).Idempotent(true).Exec()
	default:
		err = idx.Exec()
	}
	if err != nil {
		return cql.ReadErr(fmt.Sprintf("index buckets of %d streams", len(idx.Entries)), err)
	}
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for _, w := range pack {
		for _, r := range Runs(w) {
			s.addRow(b, r)
		}
	}
	b.Entries = append(b.Entries, extra...)
	if err := b.Exec(); err != nil {
		return cql.ReadErr(fmt.Sprintf("write %d streams", len(pack)), err)
	}
	return nil
}

// addRow adds the row of run r (one of Runs) and its client ids to b
// (for a run of the first LowVersions, in the partition's low_ids; past
// them, stream_ids rows), and returns the bytes of its body and ids.
func (s *Store) addRow(b *gocql.Batch, r []Pending) int {
	first, last := &r[0], &r[len(r)-1]
	body := first.Body
	if len(r) > 1 {
		body = runBody(r)
	}
	ts := rowTimestamp(last.Time, last.LastVersion-first.FirstVersion+1)
	low := last.LastVersion <= LowVersions
	// The ids at or below LowVersions: all of a low run's, and those of a
	// chunk that crosses LowVersions (a stream's appends of one commit
	// share a chunk: one that ends at or below it may share a chunk with
	// the next, which does not). In stream_ids alone, with the window as
	// their TTL, an append within the first LowVersions was forgotten
	// after the window, and an "any" retry then written again.
	n := 0
	if first.FirstVersion <= LowVersions {
		for i := range r {
			r[i].ClientIDs(func(_ uuid.UUID, v int64) {
				if v <= LowVersions {
					n++
				}
			})
		}
	}
	if low || first.OpensBucket || n > 0 {
		// Unset, not null or empty: either would write a tombstone.
		var ids, from any = gocql.UnsetValue, gocql.UnsetValue
		if n > 0 {
			ids = idMap{r, n}
		}
		if first.OpensBucket {
			// Also past LowVersions: a reader then knows that the
			// partition has no ids in its chunk rows.
			from = first.FirstVersion
		}
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutLowChunk, Idempotent: true,
			Args: []any{ts, first.FirstVersion, last.Time, last.Seq, body, ids, from, string(first.Stream), first.Bucket, last.LastVersion}})
		if low {
			return len(body) + 30*n
		}
	} else {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutChunk, Idempotent: true,
			Args: []any{string(first.Stream), first.Bucket, last.LastVersion, first.FirstVersion, last.Time, last.Seq, body, ts}})
	}
	for i := range r {
		p := &r[i]
		var ids [][16]byte
		p.ClientIDs(func(id uuid.UUID, _ int64) { ids = append(ids, id) })
		for len(ids) > 0 {
			n := min(len(ids), idsPerStatement)
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutIDs, Idempotent: true,
				Args: []any{s.idTTL, p.FirstVersion, string(p.Stream), p.Bucket, ids[:n]}})
			ids = ids[n:]
		}
	}
	return len(body)
}

// idMap is the client ids at or below LowVersions of a run's chunks (n
// of them) as the map<uuid, bigint> of id to version that low_ids adds:
// encoded straight from the chunks' id lists, since a Go map built for
// the driver cost the server a few microseconds an append.
type idMap struct {
	run []Pending
	n   int
}

// MarshalCQL implements gocql.Marshaler: the collection's size, then each
// key and value with its length (native protocol v3 and later).
func (m idMap) MarshalCQL(gocql.TypeInfo) ([]byte, error) {
	b := make([]byte, 4, 4+32*m.n)
	binary.BigEndian.PutUint32(b, uint32(m.n))
	for i := range m.run {
		m.run[i].ClientIDs(func(id uuid.UUID, v int64) {
			if v > LowVersions {
				return
			}
			b = binary.BigEndian.AppendUint32(b, 16)
			b = append(b, id[:]...)
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		})
	}
	return b, nil
}

// rowTimestamp is the write timestamp of a row of events whose last chunk
// was committed at t: two rows at one key (its last version) end with
// that same chunk, and are each a run of the chunks before it, so the one
// with more events holds the other and must win, whichever is written
// last (a paused ex-owner's fill may land after a new owner's catch-up).
func rowTimestamp(t time.Time, events int64) int64 {
	return t.UnixMicro() + min(events, record.MaxEvents)
}

// Runs bounds: the parts and body bytes of one run row.
const (
	maxRunParts = 256
	maxRunBytes = 64 << 10
)

// Runs splits the pending chunks of one stream, in version order, into
// the rows that store them: consecutive chunks of one bucket become one
// run (record.AppendRun), up to maxRunParts and maxRunBytes, so that a
// stream's appends that waited in the tail together cost Cassandra one
// row. A run never spans LowVersions (the rows at or below it keep their
// ids in the row, those above in stream_ids) and starts with the chunk
// that opens a bucket, after the index row.
//
// Rows written by different writers may hold the same chunks grouped
// differently (an owner's runs and a later owner's catch-up of the same
// records, a chunk at a time): every chunk is record.Chunks of its
// record, so two rows either hold a chunk whole or not at all; rows at
// one key end with the same chunk, and rowTimestamp lets the longer win.
// Readers skip a chunk already read (Chunks).
func Runs(chunks []Pending) [][]Pending {
	var (
		out   [][]Pending
		start int
		size  int
	)
	for i := range chunks {
		c := &chunks[i]
		if i > start {
			prev := &chunks[i-1]
			if c.Bucket != prev.Bucket || c.OpensBucket || i-start >= maxRunParts || size+len(c.Body) > maxRunBytes ||
				(c.LastVersion <= LowVersions) != (prev.LastVersion <= LowVersions) {
				out = append(out, chunks[start:i:i])
				start, size = i, 0
			}
		}
		size += len(c.Body)
	}
	if start < len(chunks) {
		out = append(out, chunks[start:len(chunks):len(chunks)])
	}
	return out
}

// runBody encodes the chunks of run r as one row's body.
func runBody(r []Pending) []byte {
	parts := make([]record.Part, len(r))
	for i := range r {
		p := &r[i]
		parts[i] = record.Part{Seq: p.Seq, Time: p.Time.UnixMilli(), FirstVersion: p.FirstVersion, LastVersion: p.LastVersion, Body: p.Body}
	}
	return record.AppendRun(make([]byte, 0, record.RunLen(parts)), parts)
}

// each runs fn(0) … fn(n-1), at most fillConcurrency at once, and returns
// the first error. A panic of fn is raised on the caller's goroutine once
// every call has ended (fanout.Group), as with n = 1.
func each(n int, fn func(int) error) error {
	if n == 1 {
		return fn(0)
	}
	sem := make(chan struct{}, fillConcurrency)
	var (
		g    fanout.Group
		mu   sync.Mutex
		ferr error
	)
	for i := range n {
		sem <- struct{}{}
		g.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				if ferr == nil {
					ferr = err
				}
				mu.Unlock()
			}
		})
	}
	g.Wait()
	return ferr
}
