package streams

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// schema/schema.cql: stream_buckets (bucket DESC), stream_events
// (last_version ASC), stream_ids.
const (
	cqlBuckets    = `SELECT bucket, first_version, opened_at FROM stream_buckets WHERE stream = ?`
	cqlHeadBucket = `SELECT bucket, first_version, opened_at FROM stream_buckets WHERE stream = ? LIMIT 2`
	cqlLastChunk  = `SELECT first_version, last_version, time FROM stream_events WHERE stream = ? AND bucket = ? ORDER BY last_version DESC LIMIT 1`
	cqlRowsAt     = `SELECT first_version, last_version, time, record FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ?`
	cqlRowsFrom   = `SELECT first_version, last_version FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ?`
	cqlRowAt      = `SELECT first_version, last_version, time, record FROM stream_events WHERE stream = ? AND bucket = ? AND last_version = ?`
	cqlChunksAsc  = `SELECT first_version, last_version, time, record FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
	cqlChunksDesc = cqlChunksAsc + ` ORDER BY last_version DESC`
	cqlIDs        = `SELECT id, version, TTL(version) FROM stream_ids WHERE stream = ? AND bucket IN ? LIMIT ?`
	cqlLookupIDs  = `SELECT id, version, TTL(version) FROM stream_ids WHERE stream = ? AND bucket IN ? AND id IN ?`
	// The ids of the chunks that have no stream_ids rows (LowVersions):
	// the partitions' static rows, and, in a partition opened before
	// them, the chunk rows' ids columns.
	cqlLowIDs    = `SELECT DISTINCT stream, bucket, low_ids_from, low_ids FROM stream_events WHERE stream = ? AND bucket IN ?`
	cqlLowChunks = `SELECT bucket, first_version, last_version, ids FROM stream_events WHERE stream = ? AND bucket IN ? AND last_version <= ?`
	// The bodies of chunks written before the ids column, up to the limit
	// of then (oldLowVersions): chunks past it have stream_ids rows.
	cqlLowBodies = `SELECT bucket, first_version, last_version, record FROM stream_events WHERE stream = ? AND bucket IN ? AND last_version <= ?`
)

// Bucket is one index row.
type Bucket struct {
	partition.Bucket
	OpenedAt time.Time
}

// Head is a stream's newest bucket and version as stored.
type Head struct {
	Version  int64 // 0: no events
	Bucket   Bucket
	Created  bool  // the newest bucket holds a chunk
	Prev     int64 // the bucket before it, -1 when none
	LastTime time.Time
}

// Buckets returns the stream's bucket index in ascending order.
func (s *Store) Buckets(ctx context.Context, stream log.StreamID) ([]Bucket, error) {
	iter := s.session.Query(cqlBuckets, string(stream)).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []Bucket
		b   Bucket
	)
	for iter.Scan(&b.Number, &b.FirstVersion, &b.OpenedAt) {
		out = append(out, b)
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read bucket index", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Head reads the stream's head: the newest index row and its last chunk.
func (s *Store) Head(ctx context.Context, stream log.StreamID) (Head, error) {
	iter := s.session.Query(cqlHeadBucket, string(stream)).WithContext(ctx).Idempotent(true).Iter()
	var (
		bs []Bucket
		b  Bucket
	)
	for iter.Scan(&b.Number, &b.FirstVersion, &b.OpenedAt) {
		bs = append(bs, b)
	}
	if err := iter.Close(); err != nil {
		return Head{}, cql.ReadErr("read stream head", err)
	}
	if len(bs) == 0 {
		return Head{Prev: -1}, nil
	}
	prev := int64(-1)
	if len(bs) > 1 {
		prev = bs[1].Number
	}
	return s.headAt(ctx, stream, bs[0], prev)
}

// HeadIn reads the head of a stream whose bucket index, in ascending
// order, is bs (as Buckets returned it): its newest bucket's last chunk.
func (s *Store) HeadIn(ctx context.Context, stream log.StreamID, bs []Bucket) (Head, error) {
	if len(bs) == 0 {
		return Head{Prev: -1}, nil
	}
	prev := int64(-1)
	if len(bs) > 1 {
		prev = bs[len(bs)-2].Number
	}
	return s.headAt(ctx, stream, bs[len(bs)-1], prev)
}

// headAt reads the head in newest, the stream's newest bucket.
func (s *Store) headAt(ctx context.Context, stream log.StreamID, newest Bucket, prev int64) (Head, error) {
	h := Head{Bucket: newest, Prev: prev}
	c, ok, err := s.chunkInfo(ctx, cqlLastChunk, stream, h.Bucket.Number)
	if err != nil {
		return Head{}, err
	}
	if ok {
		h.Created, h.Version, h.LastTime = true, c.last, c.time
		return h, nil
	}
	// Indexed but empty: a commit that opened it is being filled (the
	// caller waits for fills before it reads heads, so this is a bucket
	// whose index row came first). The version is the one before it, and
	// its time that of the bucket before's last chunk (written before the
	// index row): an Info read between the two found the zero time.
	h.Version = h.Bucket.FirstVersion - 1
	if prev >= 0 {
		c, ok, err := s.chunkInfo(ctx, cqlLastChunk, stream, prev)
		if err != nil {
			return Head{}, err
		}
		if ok {
			h.LastTime = c.time
		}
	}
	return h, nil
}

type chunkMeta struct {
	first, last int64
	time        time.Time
}

func (s *Store) chunkInfo(ctx context.Context, stmt string, stream log.StreamID, bucket int64, args ...any) (chunkMeta, bool, error) {
	var c chunkMeta
	err := s.session.Query(stmt, append([]any{string(stream), bucket}, args...)...).WithContext(ctx).Idempotent(true).
		Scan(&c.first, &c.last, &c.time)
	if errors.Is(err, gocql.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, cql.ReadErr("read chunk", err)
	}
	return c, true, nil
}

// IDs returns the client ids stored in the given buckets, with their
// versions; complete is false when there are more than limit. left has
// how long the stream_ids rows of the ids read there have to live (they
// are written with the idempotency window as TTL; the low ids are kept
// for good and have none). head is the stream's version (see lowFirst).
func (s *Store) IDs(ctx context.Context, stream log.StreamID, buckets []int64, head int64, limit int) (ids map[uuid.UUID]int64, left map[uuid.UUID]time.Duration, complete bool, err error) {
	out, left := make(map[uuid.UUID]int64), make(map[uuid.UUID]time.Duration)
	err = s.lowFirst(ctx, stream, buckets, head, nil, out, func() error {
		iter := s.session.Query(cqlIDs, string(stream), buckets, limit+1).WithContext(ctx).Idempotent(true).PageSize(limit + 1).Iter()
		return scanIDs(iter, out, left, "read stream ids")
	})
	if err != nil {
		return nil, nil, false, err
	}
	return out, left, len(out) <= limit, nil
}

// lowFirst puts in out the ids of want (nil: all) that the static rows of
// the stream's partitions in buckets hold, then calls high to read
// stream_ids into out, unless the stream's version head is at most
// LowVersions and every partition has its low_ids_from (none of its
// chunks then has stream_ids rows; a partition opened before 0004, when
// the limit was 64, may have some), then the ids the chunk rows of the
// partitions without it list (rowIDs), where out has none yet: a row's ids
// column is as its writer left it, and a longer run written since at the
// same key by this version keeps it but not its first version, so
// decoded against the row it may be off.
func (s *Store) lowFirst(ctx context.Context, stream log.StreamID, buckets []int64, head int64, want []uuid.UUID, out map[uuid.UUID]int64, high func() error) error {
	wanted := func(uuid.UUID) bool { return true }
	if want != nil {
		set := make(map[uuid.UUID]bool, len(want))
		for _, id := range want {
			set[id] = true
		}
		wanted = func(id uuid.UUID) bool { return set[id] }
	}
	legacy, err := s.staticIDs(ctx, stream, buckets, want, func(id uuid.UUID, v int64) {
		if wanted(id) {
			out[id] = v
		}
	})
	if err != nil {
		return err
	}
	if head > LowVersions || len(legacy) > 0 {
		if err := high(); err != nil {
			return err
		}
	}
	if len(legacy) == 0 {
		return nil
	}
	return s.rowIDs(ctx, stream, legacy, func(id uuid.UUID, v int64) {
		if _, ok := out[id]; !ok && wanted(id) {
			out[id] = v
		}
	})
}

// scanIDs adds the rows of a stream_ids read (id, version, TTL) to out,
// and how long each has to live to left, unless out has it already (a
// low id, kept for good).
func scanIDs(iter *gocql.Iter, out map[uuid.UUID]int64, left map[uuid.UUID]time.Duration, what string) error {
	var (
		id  uuid.UUID
		v   int64
		ttl *int
	)
	for iter.Scan((*[16]byte)(&id), &v, &ttl) {
		if _, low := out[id]; !low && ttl != nil {
			left[id] = time.Duration(*ttl) * time.Second
		}
		out[id] = v
		ttl = nil
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr(what, err)
	}
	return nil
}

// lowLookupMax is the most ids a lookup asks a static row for one by one
// (low_ids[?]); with more it reads the whole map.
const lowLookupMax = 4

// cqlLowLookup[k] asks the static rows for k ids of low_ids.
var cqlLowLookup = func() (qs [lowLookupMax + 1]string) {
	for k := 1; k <= lowLookupMax; k++ {
		qs[k] = "SELECT DISTINCT stream, bucket, low_ids_from" + strings.Repeat(", low_ids[?]", k) +
			" FROM stream_events WHERE stream = ? AND bucket IN ?"
	}
	return qs
}()

// staticIDs calls fn with the ids of low_ids, the static row of the
// stream's partitions in buckets, and their versions: those of want, when
// it holds at most lowLookupMax ids, else all of them. legacy are the
// partitions whose low_ids_from is not set: opened before
// schema/migrations/0005_low_ids.cql, their chunk rows may list ids that
// low_ids lacks (rowIDs reads them).
func (s *Store) staticIDs(ctx context.Context, stream log.StreamID, buckets []int64, want []uuid.UUID, fn func(uuid.UUID, int64)) (legacy []int64, err error) {
	var (
		st   string
		b    int64
		from *int64
	)
	if k := len(want); k > 0 && k <= lowLookupMax {
		args := make([]any, 0, k+2)
		for _, id := range want {
			args = append(args, gocql.UUID(id))
		}
		iter := s.session.Query(cqlLowLookup[k], append(args, string(stream), buckets)...).WithContext(ctx).Idempotent(true).Iter()
		vs := make([]*int64, k)
		dest := []any{&st, &b, &from}
		for i := range vs {
			dest = append(dest, &vs[i])
		}
		for iter.Scan(dest...) {
			for i, v := range vs {
				if v != nil {
					fn(want[i], *v)
				}
			}
			if from == nil {
				legacy = append(legacy, b)
			}
			clear(vs)
			from = nil
		}
		if err := iter.Close(); err != nil {
			return nil, cql.ReadErr("read stream ids", err)
		}
		return legacy, nil
	}
	iter := s.session.Query(cqlLowIDs, string(stream), buckets).WithContext(ctx).Idempotent(true).Iter()
	var ids map[gocql.UUID]int64
	for iter.Scan(&st, &b, &from, &ids) {
		for id, v := range ids {
			fn(uuid.UUID(id), v)
		}
		if from == nil {
			legacy = append(legacy, b)
		}
		ids, from = nil, nil
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read stream ids", err)
	}
	return legacy, nil
}

// rowIDs calls fn with the ids that the low chunk rows of buckets list:
// in their ids column, and, for rows written before that column, up to
// oldLowVersions, in their bodies.
func (s *Store) rowIDs(ctx context.Context, stream log.StreamID, buckets []int64, fn func(uuid.UUID, int64)) error {
	iter := s.session.Query(cqlLowChunks, string(stream), buckets, int64(LowVersions)).WithContext(ctx).Idempotent(true).Iter()
	var (
		bucket      int64
		first, last int64
		ids         []byte
		old         = map[int64]bool{} // chunks without an ids column, by first version
	)
	for iter.Scan(&bucket, &first, &last, &ids) {
		if ids == nil {
			if last <= oldLowVersions {
				old[first] = true
			}
			continue
		}
		if err := record.DecodeChunkIDs(ids, first, fn); err != nil {
			iter.Close()
			return &log.CorruptError{Kind: log.CorruptChunkIDs, Stream: stream, Bucket: bucket, First: first, Last: last, Err: err}
		}
		ids = nil
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("read stream ids", err)
	}
	if len(old) == 0 {
		return nil
	}
	// Rows written before the ids column: their ids from their bodies.
	iter = s.session.Query(cqlLowBodies, string(stream), buckets, int64(oldLowVersions)).WithContext(ctx).Idempotent(true).Iter()
	var body []byte
	for iter.Scan(&bucket, &first, &last, &body) {
		// A run, or a chunk row without an ids column, written since
		// the static row: its ids are there.
		if !old[first] || record.IsRun(body) {
			continue
		}
		appends, err := record.DecodeChunkBody(body)
		if n := eventCount(appends); err == nil && n != last-first+1 {
			// Numbered from first, a body of other length would give
			// its ids (and those of the rows after it) wrong versions,
			// which a retry would be answered with (as rowReader.chunk).
			err = fmt.Errorf("%w: chunk %d..%d holds %d events", record.ErrCorrupt, first, last, n)
		}
		if err != nil {
			iter.Close()
			return &log.CorruptError{Kind: log.CorruptChunk, Stream: stream, Bucket: bucket, First: first, Last: last, Err: err}
		}
		v := first
		for _, a := range appends {
			for _, e := range a.Events {
				if a.ClientIDs {
					fn(e.ID, v)
				}
				v++
			}
		}
		body = nil
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("read stream ids", err)
	}
	return nil
}

// LookupIDs returns which of ids are stored in the given buckets, and
// for those read from stream_ids how long their rows have to live (as
// IDs). head is the stream's version (see lowFirst). noLow says that none of ids is
// among the stream's low ids (LowIDs): only stream_ids is read. Reading
// the static row cost Cassandra about a millisecond once it held a
// stream's first 1,024 ids, stream_ids ~60 µs (docs/benchmarks.md,
// Session 19).
func (s *Store) LookupIDs(ctx context.Context, stream log.StreamID, buckets []int64, head int64, ids []uuid.UUID, noLow bool) (found map[uuid.UUID]int64, left map[uuid.UUID]time.Duration, err error) {
	out, left := make(map[uuid.UUID]int64), make(map[uuid.UUID]time.Duration)
	high := func() error {
		for start := 0; start < len(ids); start += 50 {
			chunk := ids[start:min(start+50, len(ids))]
			arg := make([][16]byte, len(chunk))
			for i, id := range chunk {
				arg[i] = id
			}
			iter := s.session.Query(cqlLookupIDs, string(stream), buckets, arg).WithContext(ctx).Idempotent(true).Iter()
			if err := scanIDs(iter, out, left, "look up stream ids"); err != nil {
				return err
			}
		}
		return nil
	}
	if noLow {
		err = high()
	} else {
		err = s.lowFirst(ctx, stream, buckets, head, ids, out, high)
	}
	if err != nil {
		return nil, nil, err
	}
	return out, left, nil
}

// LowIDs returns the stream's low ids in the given buckets: those of its
// first LowVersions, which the partitions keep apart from stream_ids (in
// their static row, or for partitions from before it in their chunk rows),
// with their versions. Once a stream is past LowVersions they no longer
// change, so its owner may keep a filter of them and spare its lookups the
// static row (LookupIDs' noLow).
func (s *Store) LowIDs(ctx context.Context, stream log.StreamID, buckets []int64) (map[uuid.UUID]int64, error) {
	out := make(map[uuid.UUID]int64)
	// head 0 and no stream_ids read: lowFirst then reads only where low
	// ids are kept.
	if err := s.lowFirst(ctx, stream, buckets, 0, nil, out, func() error { return nil }); err != nil {
		return nil, err
	}
	return out, nil
}

// Chunk is a stored chunk, decoded: a row, or one part of a run row.
type Chunk struct {
	FirstVersion, LastVersion int64
	Time                      time.Time
	Appends                   []record.ChunkAppend
	// Body is its encoding while it is read.
	Body []byte
	// bufs holds Appends when the read lends its memory (chunks): it goes
	// back to chunkBuffers once the consumer is done with the chunk.
	bufs *record.ChunkBuffers
	// block holds the events' bytes when the chunk is a part of a block
	// a lending read decompressed: released once the consumer is done.
	block *blockBuf
}

// chunkBuffers recycles the memory of chunks a lending read decoded.
var chunkBuffers = sync.Pool{New: func() any { return new(record.ChunkBuffers) }}

// blockBuf is the memory a block's parts are decompressed into by a
// lending forward read, shared by the chunks it sends: it goes back to
// blockBufs when the last of them, and the read that split the block,
// are done with it. A fresh buffer a block, zeroed, was 6 % of the CPU of
// replays of a stream of 1-event appends (docs/benchmarks.md, Session 26).
type blockBuf struct {
	b    []byte
	refs atomic.Int32
}

var blockBufs = sync.Pool{New: func() any { return new(blockBuf) }}

// maxKeptBlock is the largest block buffer kept for the next block: a
// block's bodies (maxBlockBytes) and its parts' headers.
const maxKeptBlock = maxBlockBytes + 64<<10

func (bb *blockBuf) release() {
	if bb.refs.Add(-1) != 0 {
		return
	}
	if lendHook != nil {
		lendHook(0, -1)
	}
	if cap(bb.b) <= maxKeptBlock {
		blockBufs.Put(bb)
	}
}

// lendHook, when set (tests), is told of the chunk buffers and block
// buffers a lending read takes from their pools (+1) and gives back (-1).
var lendHook func(bufs, blocks int)

// giveBack returns the pooled memory of chunks that no consumer will
// take (a read stopped early, or failed): left to the GC, each was an
// allocation for the reads after it.
func giveBack(cs []Chunk) {
	for i := range cs {
		c := &cs[i]
		if c.bufs != nil {
			putChunkBuffers(c.bufs)
		}
		if c.block != nil {
			c.block.release()
		}
		cs[i] = Chunk{}
	}
}

func putChunkBuffers(b *record.ChunkBuffers) {
	if lendHook != nil {
		lendHook(-1, 0)
	}
	chunkBuffers.Put(b)
}

// batches recycles the slices of chunks that reads send ahead.
var batches = sync.Pool{New: func() any { return new([]Chunk) }}

// errStopped ends a span read whose consumer left.
var errStopped = errors.New("stopped")

// Chunks calls fn with each chunk holding a version in from..to (to = 0: the
// head) of the stream, in order (backward: newest first). fn may return
// log.ErrStop. want is about how many events the caller will take (0: all
// of them): a forward read that wants more than a bucket holds reads the
// next bucket while fn takes this one's chunks.
func (s *Store) Chunks(ctx context.Context, stream log.StreamID, bs []Bucket, from, to int64, backward bool, want int64, fn func(*Chunk) error) error {
	return s.chunks(ctx, stream, bs, from, to, backward, want, false, fn)
}

// chunks is Chunks; lend says that fn keeps nothing of a chunk after it
// returns, so the chunk's memory may be decoded into again.
func (s *Store) chunks(ctx context.Context, stream log.StreamID, bs []Bucket, from, to int64, backward bool, want int64, lend bool, fn func(*Chunk) error) error {
	idx := make([]partition.Bucket, len(bs))
	for i := range bs {
		idx[i] = bs[i].Bucket
	}
	spans := partition.Locate(idx, from, to)
	if backward {
		for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
			spans[i], spans[j] = spans[j], spans[i]
		}
	}
	var (
		cur, next *spanRead
		hint      pageHint // the rows a page of this read's spans
	)
	defer func() {
		for _, r := range []*spanRead{cur, next} {
			if r != nil {
				r.close()
			}
		}
	}()
	left := want // events still wanted at most (0: all)
	for i, sp := range spans {
		cur, next = next, nil
		if cur == nil {
			cur = s.openSpan(ctx, stream, sp, sp.To != 0 && sp.To == to, backward, lend, left, &hint)
		}
		// A bucket is one query's round trip and one page: read the next
		// while this one is decoded and written, as a raw client reading
		// buckets in parallel would.
		size := sp.To - sp.From + 1 // a span before the last ends at its bucket's end
		if i+1 < len(spans) && !backward && (want == 0 || left > size) {
			n := spans[i+1]
			next = s.openSpan(ctx, stream, n, n.To != 0 && n.To == to, backward, lend, max(left-size, 0), &hint)
		}
		err := cur.each(fn)
		cur.close()
		cur = nil
		if err != nil {
			return err
		}
		if sp.To != 0 {
			left -= size // an open span's size is unknown: left stays an upper bound
		}
	}
	return nil
}

// spanRead is one span's chunks, read and decoded a few ahead of their
// consumer on a goroutine of their own (openSpan).
type spanRead struct {
	ahead chan decodedChunk
	// stop ends the goroutine's sends; its context only its query. A send
	// must not end with ctx: a read whose client went away would close
	// ahead and look complete, where its query's error says it is not.
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
	// panicked is the goroutine's panic, set before ahead is closed: the
	// consumer raises it (each, at the end of ahead; or close), where a
	// closed ahead looked like a complete span and the process ended.
	panicked *fanout.Panic
	raised   bool // the consumer raised panicked
}

type decodedChunk struct {
	cs  []Chunk
	err error
}

// A batch of chunks sent ahead holds at most batchChunks chunks or, past
// one chunk, about batchEvents events: chunksAhead batches of large
// chunks must not hold many times what one chunk did.
const (
	batchChunks = 64
	batchEvents = 256
)

// openSpan starts reading sp. bounded: sp.To is the read's own bound, not
// its bucket's end, so the row holding it must be found first (a bucket's
// rows all end in it: buckets tile the stream).
//
// want is how many events the read takes at most (0 or less: all): a row
// holds at least one, so no page needs more rows than that. hint carries
// the rows a page from one span of a read to the next (nil: none).
func (s *Store) openSpan(ctx context.Context, stream log.StreamID, sp partition.Span, bounded, backward, lend bool, want int64, hint *pageHint) *spanRead {
	// Its own context: a span read ahead and not wanted after all stops
	// its query rather than being waited for.
	ctx, cancel := context.WithCancel(ctx)
	return openSpanOn(partitionRows{ctx, s, stream, sp.Bucket}, cancel, stream, s.pageSize, sp, bounded, backward, lend, want, hint)
}

// openSpanOn is openSpan reading src (in tests, a model of a partition);
// cancel ends src's queries.
func openSpanOn(src spanRows, cancel context.CancelFunc, stream log.StreamID, pageSize int, sp partition.Span, bounded, backward, lend bool, want int64, hint *pageHint) *spanRead {
	r := &spanRead{ahead: make(chan decodedChunk, chunksAhead), stop: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	// The rows are scanned and decoded a few chunks ahead of fn, on
	// another goroutine: decoding (zstd, then the record) was about half
	// of a replay's server CPU, and fn's encoding and writing the other
	// half; one after the other they left the second core idle.
	go func() {
		defer close(r.done)
		defer close(r.ahead)
		r.panicked = fanout.Catch(func() { r.read(src, stream, pageSize, sp, bounded, backward, lend, want, hint) })
	}()
	return r
}

// read is the goroutine of openSpanOn: it reads the span and sends its
// chunks ahead.
func (r *spanRead) read(src spanRows, stream log.StreamID, pageSize int, sp partition.Span, bounded, backward, lend bool, want int64, hint *pageHint) {
	// Chunks go to the consumer a batch at a time: a block of a
	// stream's 1-event appends is 256 chunks, and a channel send each
	// cost its replay about a tenth of its rate. Not for a read of a
	// few events: batches ahead would fetch rows it does not want.
	var (
		batch  []Chunk
		events int64
		most   = batchChunks
	)
	if want > 0 {
		most = 1
	}
	push := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case r.ahead <- decodedChunk{cs: batch}:
			batch, events = nil, 0
			return true
		case <-r.stop:
			return false
		}
	}
	rr := rowReader{stream: stream, sp: sp, bounded: bounded, backward: backward, lend: lend, want: want, next: sp.From, sent: math.MaxInt64, hint: hint,
		send: func(c Chunk) bool {
			if batch == nil {
				// From the pool: growing a batch of 64 a chunk at a
				// time was 3 % of such a replay's CPU.
				batch = (*batches.Get().(*[]Chunk))[:0]
			}
			batch = append(batch, c)
			if events += c.LastVersion - c.FirstVersion + 1; len(batch) >= most || events >= batchEvents {
				return push()
			}
			return true
		}}
	err := readSpan(src, stream, pageSize, &rr)
	if err == nil && !push() {
		err = errStopped
	}
	if err != nil {
		// Never sent: the batch being filled, a backward row's parts.
		giveBack(batch)
		giveBack(rr.parts)
	}
	if err != nil && err != errStopped {
		select {
		case r.ahead <- decodedChunk{err: err}:
		case <-r.stop:
		}
	}
}

// spanRows is what readSpan reads one stream partition (a span's
// bucket) with: Cassandra (partitionRows), or in tests a model of a
// partition whose rows change between any two of its queries.
type spanRows interface {
	// rows iterates over the rows whose keys are in lo..hi, ascending
	// (descending: backward), pageSize a page.
	rows(lo, hi int64, backward bool, pageSize int) rowIter
	// holding returns the key of the first row ending at or after v that
	// starts at or before it (a row ending after v may start after it,
	// when an older run holds v: Runs), reading keys pageSize at a time;
	// MaxInt64 when none does.
	holding(v int64, pageSize int) (int64, error)
	// at returns the row at key k (ok false: none).
	at(k int64) (r heldRow, ok bool, err error)
}

// rowIter is an iteration of spanRows.rows: next fills r with a row, its
// body a new slice (the decoded events alias it).
type rowIter interface {
	next(r *heldRow) bool
	close() error
}

// partitionRows is spanRows over a stream's partition in Cassandra.
type partitionRows struct {
	ctx    context.Context
	s      *Store
	stream log.StreamID
	bucket int64
}

func (p partitionRows) rows(lo, hi int64, backward bool, pageSize int) rowIter {
	stmt := cqlChunksAsc
	if backward {
		stmt = cqlChunksDesc
	}
	return cqlRowIter{p.s.session.Query(stmt, string(p.stream), p.bucket, lo, hi).WithContext(p.ctx).
		Idempotent(true).PageSize(pageSize).Prefetch(0.5).Iter()}
}

func (p partitionRows) holding(v int64, pageSize int) (int64, error) {
	iter := p.s.session.Query(cqlRowsFrom, string(p.stream), p.bucket, v).WithContext(p.ctx).Idempotent(true).PageSize(pageSize).Iter()
	var first, last int64
	for iter.Scan(&first, &last) {
		if first <= v {
			iter.Close()
			return last, nil
		}
	}
	if err := iter.Close(); err != nil {
		return 0, cql.ReadErr("read chunk", err)
	}
	return math.MaxInt64, nil
}

func (p partitionRows) at(k int64) (heldRow, bool, error) {
	var r heldRow
	err := p.s.session.Query(cqlRowAt, string(p.stream), p.bucket, k).WithContext(p.ctx).Idempotent(true).Scan(&r.first, &r.last, &r.t, &r.body)
	if err == gocql.ErrNotFound {
		return heldRow{}, false, nil
	}
	if err != nil {
		return heldRow{}, false, cql.ReadErr("read stream", err)
	}
	return r, true, nil
}

type cqlRowIter struct{ iter *gocql.Iter }

func (it cqlRowIter) next(r *heldRow) bool {
	r.body = nil // a new slice: the decoded events of the row before alias its own
	return it.iter.Scan(&r.first, &r.last, &r.t, &r.body)
}

func (it cqlRowIter) close() error {
	if err := it.iter.Close(); err != nil {
		return cql.ReadErr("read stream", err)
	}
	return nil
}

// readSpan reads rr's span from src: a bounded read first finds the row
// holding its bound, then one range query, or two when the versions up
// to the bound are in a row past it (rowReader); a backward read may fill
// a gap from the row holding a missing version (rowWith). pageSize is the
// most rows a page of the range query; pages are sized by the rows'
// stored bytes (pageRows), and a query whose page size no longer fits
// its rows is followed by one from the next key.
func readSpan(src spanRows, stream log.StreamID, pageSize int, rr *rowReader) error {
	sp := rr.sp
	hi := int64(math.MaxInt64)
	if rr.bounded {
		// Few keys a page: the row is expected first.
		h, err := src.holding(sp.To, 4)
		if err != nil {
			return err
		}
		hi = h
		rr.boundHeld = h != math.MaxInt64
	}
	if rr.backward {
		rr.above = func(v int64) (heldRow, bool, error) { return rowWith(src, stream, v) }
	}
	lo := sp.From
	if rr.want > 0 && rr.want < int64(pageSize) {
		// A read of a few events (a page of the HTTP API) fetched a
		// whole page of rows, the rest of the bucket: 5,000 rows to send
		// one event took 12 ms against 4.5 for a row or two. At least
		// 16: rows that hold no new version (a catch-up's rows under a
		// run: rowReader) would otherwise cost a round trip each.
		pageSize = max(int(rr.want), min(pageSize, 16))
	}
	// The rows' size is unknown until some are read: a page of 5,000
	// block rows (Compact: 256 events each, up to maxBlockBytes) was a
	// whole bucket, tens of MiB that a read held while its consumer (a
	// slow subscriber) took the first events. A span after the first
	// takes the size its read measured before: a first page of 4 rows
	// each span cost a replay a query more a bucket, and the page its
	// driver had fetched ahead.
	n := min(pageSize, firstPageRows)
	if h := rr.hint.get(); h > 0 {
		n = min(pageSize, h)
	}
	for {
		iter := src.rows(lo, hi, rr.backward, n)
		var (
			r           heldRow
			rows, bytes int // of the page being read
			resized     bool
		)
		for iter.next(&r) {
			err := rr.row(r.first, r.last, r.t, r.body)
			if err != nil {
				iter.close()
				if err == errStopped {
					return err
				}
				return fmt.Errorf("stream %s row %d: %w", stream, r.last, err)
			}
			if rr.done() {
				iter.close()
				return nil
			}
			if rows, bytes = rows+1, bytes+len(r.body); rows == n {
				// A page read: the next ones sized by it, in a query of
				// their own if the size changes much (a query's pages are
				// all of one size).
				m := pageRows(bytes, rows, pageSize)
				rr.hint.set(m)
				if m < n/2 || m > 2*n {
					n, resized = m, true
					break
				}
				rows, bytes = 0, 0
			}
		}
		if !resized && rows > 0 {
			rr.hint.set(pageRows(bytes, rows, pageSize))
		}
		if err := iter.close(); err != nil {
			return err
		}
		if resized {
			if rr.backward {
				hi = r.last - 1
			} else {
				lo = r.last + 1
			}
			if lo <= hi {
				continue
			}
			// Its last row was the range's last: the query is done.
		}
		if rr.backward {
			return rr.fillBelow(rr.sp.From - 1)
		}
		if rr.done() || hi == math.MaxInt64 {
			return rr.flush()
		}
		// Versions up to the bound not sent, though a row held the bound
		// when the read began: the row that holds them is past it, a run
		// reaching back over rows held after a gap, or a block rewritten
		// meanwhile (Compact: its run is at the block's end, the rows it
		// replaced gone). Read on until it comes, in small pages.
		lo, hi, pageSize = hi+1, math.MaxInt64, min(pageSize, 16)
		n = min(n, pageSize)
	}
}

// readPageBytes is about the stored bytes a page of a stream read holds
// (pageRows); a read holds its page and the one fetched ahead.
// firstPageRows are the rows of a read's first page, before any is
// measured: at most a few MiB (a block is at most maxBlockBytes before
// compression), where a query of 1-event rows costs one round trip more.
const (
	readPageBytes = 1 << 20
	firstPageRows = 4
)

// pageRows is how many rows make a page of about readPageBytes, when
// rows rows took bytes: at least one, at most most.
func pageRows(bytes, rows, most int) int {
	if bytes <= 0 {
		return most
	}
	return int(max(1, min(int64(most), int64(readPageBytes)*int64(rows)/int64(bytes))))
}

// rowWith returns the row that src.holding finds for version v, with its
// body (ok false when none holds v): the keys first, so that the rows
// between v and it, which a backward read has mostly read already, are
// not fetched again. Keys 64 a page: rows may lie between.
func rowWith(src spanRows, stream log.StreamID, v int64) (heldRow, bool, error) {
	for range 3 {
		k, err := src.holding(v, 64)
		if err != nil || k == math.MaxInt64 {
			return heldRow{}, false, err
		}
		r, ok, err := src.at(k)
		if err != nil {
			return heldRow{}, false, err
		}
		if !ok {
			// Deleted since: its block was rewritten, and the run, written
			// with the deletes, holds v now.
			continue
		}
		return r, r.first <= v, nil
	}
	// At a quorum one retry finds the run (nothing deletes a run); at
	// consistency ONE each query may ask another replica. Not a gap to
	// leave in the read: an error the client retries.
	return heldRow{}, false, fmt.Errorf("stream %s version %d: its row moved under three reads: %w", stream, v, log.ErrUnavailable)
}

// rowReader turns a span's rows, in key order, into its chunks, each sent
// once and in version order. A row is a chunk or a run of them, and rows
// of different writers may overlap (Runs): each holds its chunks whole,
// and rows at one key hold the same last chunk. Backward, rows come
// newest key first and a row's chunks are sent newest first, skipping
// those sent. Forward, a row holds every version from its first to its
// key, but a run that holds earlier versions may come after rows that
// start later (its key is later): a row that starts past the next version
// wanted is held until a row brings that version. Backward, the versions
// below the row a read sent last may be only in a row at a key it has
// passed: a run past a bounded read's bound (rows up to the key of one
// that holds the bound), or a block rewritten since (streams.Compact); a
// gap below it is filled from the row holding the missing version before
// the next row is taken.
type rowReader struct {
	stream            log.StreamID // names a corrupt row (split)
	sp                partition.Span
	bounded, backward bool
	// lend: each chunk is decoded into buffers from chunkBuffers, and a
	// forward read's blocks into buffers from blockBufs, which its
	// consumer gives back (spanRead.each).
	lend bool
	want int64 // events the read takes at most (0: all)
	send func(Chunk) bool
	// above returns a row that holds a version, from the first key at or
	// past it (backward reads; nil otherwise).
	above func(v int64) (heldRow, bool, error)
	// boundHeld: a bounded read found a row holding its bound when it
	// began, so every version up to the bound is written.
	boundHeld bool
	next      int64 // forward: the next version wanted
	sent      int64 // backward: the first version sent
	held      []heldRow
	parts     []Chunk // a run's chunks, sent newest first (backward)
	hint      *pageHint
}

// pageHint is the rows a page (pageRows) as one span of a read measured
// them, for the spans after it; nil or 0: not known.
type pageHint struct{ rows atomic.Int64 }

func (h *pageHint) get() int {
	if h == nil {
		return 0
	}
	return int(h.rows.Load())
}

func (h *pageHint) set(rows int) {
	if h != nil {
		h.rows.Store(int64(rows))
	}
}

type heldRow struct {
	first, last int64
	t           time.Time
	body        []byte
}

// maxHeld bounds the rows a forward read holds after a gap before it
// sends them as they are: only a broken partition holds that many.
const maxHeld = 4 * maxRunParts

// row takes one row.
func (rr *rowReader) row(first, last int64, t time.Time, body []byte) error {
	if rr.backward {
		if err := rr.fillBelow(last); err != nil {
			return err
		}
		return rr.sendBackward(first, last, t, body)
	}
	if rr.bounded && first > rr.sp.To {
		return nil // no version the read wants
	}
	if first > rr.next {
		if len(rr.held) < maxHeld {
			rr.held = append(rr.held, heldRow{first, last, t, body})
			return nil
		}
		// Too many: send them as they are, in key order, then this one.
		if err := rr.flush(); err != nil {
			return err
		}
	}
	if err := rr.split(first, last, t, body); err != nil {
		return err
	}
	// The held rows the versions sent reach, in key order; one whose
	// versions are all sent is dropped.
	for len(rr.held) > 0 {
		h := rr.held[0]
		if h.first > rr.next {
			break
		}
		rr.held = rr.held[1:]
		if err := rr.split(h.first, h.last, h.t, h.body); err != nil {
			return err
		}
	}
	return nil
}

// sendBackward sends the chunks of one row not yet sent, newest first.
func (rr *rowReader) sendBackward(first, last int64, t time.Time, body []byte) error {
	if err := rr.split(first, last, t, body); err != nil {
		return err
	}
	for i := len(rr.parts) - 1; i >= 0; i-- {
		if !rr.send(rr.parts[i]) {
			// parts[i] is in the batch not sent, the rest were not
			// given to send at all.
			giveBack(rr.parts[:i])
			rr.parts = rr.parts[:0]
			return errStopped
		}
	}
	if len(rr.parts) > 0 {
		rr.sent = rr.parts[0].FirstVersion
	}
	clear(rr.parts)
	rr.parts = rr.parts[:0]
	return nil
}

// fillBelow sends, backward, the versions between the last one sent (or
// a bounded read's bound, before any) and down (a row ending at down
// comes next, or the span ends there) from rows at later keys than the
// read has reached, the only rows that can hold them: runs past the
// read's upper key, or a block rewritten since the read passed its end
// (Compact: its run is at the block's end, the rows it replaced gone).
func (rr *rowReader) fillBelow(down int64) error {
	for rr.above != nil {
		top := rr.sent
		if top == math.MaxInt64 {
			if !rr.boundHeld {
				return nil // unbounded, or no row held the bound: none to fill
			}
			top = rr.sp.To + 1
		}
		if top-1 <= down || top-1 < rr.sp.From {
			return nil
		}
		r, ok, err := rr.above(top - 1)
		if err != nil || !ok {
			return err // none: the gap stays, as a read without runs would show it
		}
		before := rr.sent
		if err := rr.sendBackward(r.first, r.last, r.t, r.body); err != nil {
			return err
		}
		if rr.sent >= before {
			return nil // it held nothing below: the gap stays
		}
	}
	return nil
}

// flush sends the rows still held, gap and all: no row filled it (one
// being written while this read ran).
func (rr *rowReader) flush() error {
	for len(rr.held) > 0 {
		h := rr.held[0]
		rr.held = rr.held[1:]
		if err := rr.split(h.first, h.last, h.t, h.body); err != nil {
			return err
		}
	}
	return nil
}

// done reports whether a bounded read has what it wants: every version
// up to its bound sent (rows held past it are not wanted).
func (rr *rowReader) done() bool {
	return !rr.backward && rr.bounded && rr.next > rr.sp.To
}

// split decodes the chunks of one row that the read wants and has not
// sent, and sends them (backward: collects them in rr.parts). A run row
// is checked whole, its checksum included, before its first part comes
// (record.DecodeRun): a corrupt run sends none.
//
// A corrupt row's error is a *log.CorruptError naming its key.
func (rr *rowReader) split(first, last int64, t time.Time, body []byte) error {
	err := rr.splitRow(first, last, t, body)
	if err != nil && errors.Is(err, record.ErrCorrupt) {
		kind := log.CorruptChunk
		if record.IsRun(body) {
			kind = log.CorruptRun
		}
		err = &log.CorruptError{Kind: kind, Stream: rr.stream, Bucket: rr.sp.Bucket, First: first, Last: last, Err: err}
	}
	return err
}

func (rr *rowReader) splitRow(first, last int64, t time.Time, body []byte) error {
	if !record.IsRun(body) {
		return rr.chunk(Chunk{FirstVersion: first, LastVersion: last, Time: t, Body: body})
	}
	var (
		blk *blockBuf
		buf []byte
	)
	if rr.lend && !rr.backward && record.IsBlock(body) {
		blk = blockBufs.Get().(*blockBuf)
		blk.refs.Store(1) // split's own, until every part is sent
		if lendHook != nil {
			lendHook(0, 1)
		}
		buf = blk.b
	}
	fresh, err := record.DecodeRunIn(body, buf, first, last, func(p *record.Part) error {
		return rr.chunk(Chunk{FirstVersion: p.FirstVersion, LastVersion: p.LastVersion, Time: time.UnixMilli(p.Time), Body: p.Body, block: blk})
	})
	if blk != nil {
		if fresh != nil {
			blk.b = fresh[:0] // before the release that may pool it
		}
		blk.release()
	}
	return err
}

func (rr *rowReader) chunk(c Chunk) error {
	if c.LastVersion < rr.sp.From || rr.bounded && c.FirstVersion > rr.sp.To {
		return nil // outside the read: not decoded
	}
	if rr.backward {
		if c.LastVersion >= rr.sent {
			if c.FirstVersion >= rr.sent {
				return nil // sent
			}
			return fmt.Errorf("%w: chunk %d..%d overlaps a chunk sent", record.ErrCorrupt, c.FirstVersion, c.LastVersion)
		}
	} else if c.LastVersion < rr.next {
		return nil // sent
	} else if c.FirstVersion < rr.next && rr.next > rr.sp.From {
		return fmt.Errorf("%w: chunk %d..%d overlaps a chunk sent", record.ErrCorrupt, c.FirstVersion, c.LastVersion)
	}
	var bufs *record.ChunkBuffers
	if rr.lend {
		bufs = chunkBuffers.Get().(*record.ChunkBuffers)
		if lendHook != nil {
			lendHook(1, 0)
		}
	}
	appends, err := record.DecodeChunkBodyInto(c.Body, bufs)
	if err == nil {
		// A body that holds more or fewer events than its row's (or its
		// part's) versions would be read at the wrong versions: forward
		// from the first, backward from the last, and with a gap or a
		// version twice against the chunks beside it.
		if n := eventCount(appends); n != c.LastVersion-c.FirstVersion+1 {
			err = fmt.Errorf("%w: chunk %d..%d holds %d events", record.ErrCorrupt, c.FirstVersion, c.LastVersion, n)
		}
	}
	if err != nil {
		if bufs != nil {
			putChunkBuffers(bufs)
		}
		return err
	}
	c.Appends, c.Body, c.bufs = appends, nil, bufs
	if rr.backward {
		rr.parts = append(rr.parts, c) // sent once the row is read
		return nil
	}
	rr.next = c.LastVersion + 1
	if c.block != nil {
		c.block.refs.Add(1) // the consumer's, released once it is done
	}
	if !rr.send(c) {
		return errStopped
	}
	return nil
}

// eventCount is the number of events of appends.
func eventCount(appends []record.ChunkAppend) int64 {
	n := 0
	for i := range appends {
		n += len(appends[i].Events)
	}
	return int64(n)
}

// each calls fn with the span's chunks in order.
func (r *spanRead) each(fn func(*Chunk) error) error {
	for d := range r.ahead {
		if d.err != nil {
			return d.err
		}
		for i := range d.cs {
			c := &d.cs[i]
			if err := fn(c); err != nil {
				giveBack(d.cs[i:]) // fn is done with c too
				return err
			}
			if c.bufs != nil {
				putChunkBuffers(c.bufs)
			}
			if c.block != nil {
				c.block.release()
			}
		}
		clear(d.cs) // the pooled slice keeps no chunk's memory alive
		cs := d.cs[:0]
		batches.Put(&cs)
	}
	r.raise()
	return nil
}

// raise raises the reading goroutine's panic, once, after ahead closed.
func (r *spanRead) raise() {
	if r.panicked != nil && !r.raised {
		r.raised = true
		panic(r.panicked)
	}
}

// close stops the reading goroutine and waits for it, and gives back the
// chunks it read ahead that the consumer did not take (stopped early).
func (r *spanRead) close() {
	r.cancel()
	close(r.stop)
	<-r.done
	for d := range r.ahead { // closed before done
		giveBack(d.cs)
	}
	r.raise() // a span stopped early: its goroutine's panic is still a bug
}

// chunksAhead is how many batches of decoded chunks a read holds ahead
// of its consumer.
const chunksAhead = 4

// ChunkAt returns the first and last version and time of the chunk holding
// version v in bucket b (of a run row, the part that holds it); ok is false
// when none does.
func (s *Store) ChunkAt(ctx context.Context, stream log.StreamID, b, v int64) (first, last int64, t time.Time, ok bool, err error) {
	// The first row ending at or after v that starts at or before it
	// (rowHolding): the first ending after v may start after it, when an
	// older run holds v, and a search that took it would not narrow.
	var body []byte
	iter := s.session.Query(cqlRowsAt, string(stream), b, v).WithContext(ctx).Idempotent(true).PageSize(4).Iter()
	found := false
	for iter.Scan(&first, &last, &t, &body) {
		if first <= v {
			found = true
			break
		}
		body = nil
	}
	if err := iter.Close(); err != nil {
		return 0, 0, time.Time{}, false, cql.ReadErr("read chunk", err)
	}
	if !found {
		return 0, 0, time.Time{}, false, nil
	}
	if !record.IsRun(body) {
		return first, last, t, true, nil
	}
	err = record.DecodeRun(body, first, last, func(p *record.Part) error {
		if p.FirstVersion <= v && v <= p.LastVersion {
			first, last, t = p.FirstVersion, p.LastVersion, time.UnixMilli(p.Time)
			return errStopped
		}
		return nil
	})
	if err != nil && err != errStopped {
		return 0, 0, time.Time{}, false, fmt.Errorf("stream %s row %d: %w", stream, last, err)
	}
	return first, last, t, true, nil // the part, or the row when none holds v
}
