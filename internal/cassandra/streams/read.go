package streams

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
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
	cqlChunkAt    = `SELECT first_version, last_version, time FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? LIMIT 1`
	cqlChunksAsc  = `SELECT first_version, last_version, time, record FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
	cqlChunksDesc = cqlChunksAsc + ` ORDER BY last_version DESC`
	cqlIDs        = `SELECT id, version FROM stream_ids WHERE stream = ? AND bucket IN ? LIMIT ?`
	cqlLookupIDs  = `SELECT id, version FROM stream_ids WHERE stream = ? AND bucket IN ? AND id IN ?`
	// The chunks whose ids have no stream_ids rows (LowVersions).
	cqlLowChunks = `SELECT first_version, last_version, ids FROM stream_events WHERE stream = ? AND bucket IN ? AND last_version <= ?`
	// The bodies of chunks written before the ids column, up to the limit
	// of then (oldLowVersions): chunks past it have stream_ids rows.
	cqlLowBodies = `SELECT first_version, record FROM stream_events WHERE stream = ? AND bucket IN ? AND last_version <= ?`
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
	// whose index row came first). The version is the one before it.
	h.Version = h.Bucket.FirstVersion - 1
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
// versions; complete is false when there are more than limit.
func (s *Store) IDs(ctx context.Context, stream log.StreamID, buckets []int64, limit int) (map[uuid.UUID]int64, bool, error) {
	iter := s.session.Query(cqlIDs, string(stream), buckets, limit+1).WithContext(ctx).Idempotent(true).PageSize(limit + 1).Iter()
	out := make(map[uuid.UUID]int64)
	var (
		id uuid.UUID
		v  int64
	)
	for iter.Scan((*[16]byte)(&id), &v) {
		out[id] = v
	}
	if err := iter.Close(); err != nil {
		return nil, false, cql.ReadErr("read stream ids", err)
	}
	err := s.lowIDs(ctx, stream, buckets, func(id uuid.UUID, v int64) { out[id] = v })
	if err != nil {
		return nil, false, err
	}
	return out, len(out) <= limit, nil
}

// lowIDs calls fn with each client id of the chunks in buckets that end at
// or below LowVersions, which have no stream_ids rows, and its version.
func (s *Store) lowIDs(ctx context.Context, stream log.StreamID, buckets []int64, fn func(uuid.UUID, int64)) error {
	iter := s.session.Query(cqlLowChunks, string(stream), buckets, int64(LowVersions)).WithContext(ctx).Idempotent(true).Iter()
	var (
		first, last int64
		ids         []byte
		old         = map[int64]bool{} // chunks without an ids column, by first version
	)
	for iter.Scan(&first, &last, &ids) {
		if ids == nil {
			if last <= oldLowVersions {
				old[first] = true
			}
			continue
		}
		if err := record.DecodeChunkIDs(ids, first, fn); err != nil {
			iter.Close()
			return fmt.Errorf("stream %s chunk at %d: %w", stream, first, err)
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
	for iter.Scan(&first, &body) {
		if !old[first] {
			continue
		}
		appends, err := record.DecodeChunkBody(body)
		if err != nil {
			iter.Close()
			return fmt.Errorf("stream %s chunk at %d: %w", stream, first, err)
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

// LookupIDs returns which of ids are stored in the given buckets.
func (s *Store) LookupIDs(ctx context.Context, stream log.StreamID, buckets []int64, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	out := make(map[uuid.UUID]int64)
	for start := 0; start < len(ids); start += 50 {
		chunk := ids[start:min(start+50, len(ids))]
		arg := make([][16]byte, len(chunk))
		for i, id := range chunk {
			arg[i] = id
		}
		iter := s.session.Query(cqlLookupIDs, string(stream), buckets, arg).WithContext(ctx).Idempotent(true).Iter()
		var (
			id uuid.UUID
			v  int64
		)
		for iter.Scan((*[16]byte)(&id), &v) {
			out[id] = v
		}
		if err := iter.Close(); err != nil {
			return nil, cql.ReadErr("look up stream ids", err)
		}
	}
	want := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	err := s.lowIDs(ctx, stream, buckets, func(id uuid.UUID, v int64) {
		if want[id] {
			out[id] = v
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Chunk is a stored chunk, decoded.
type Chunk struct {
	FirstVersion, LastVersion int64
	Time                      time.Time
	Appends                   []record.ChunkAppend
}

// Chunks calls fn with each chunk holding a version in from..to (to = 0: the
// head) of the stream, in order (backward: newest first). fn may return
// log.ErrStop. want is about how many events the caller will take (0: all
// of them): a forward read that wants more than a bucket holds reads the
// next bucket while fn takes this one's chunks.
func (s *Store) Chunks(ctx context.Context, stream log.StreamID, bs []Bucket, from, to int64, backward bool, want int64, fn func(*Chunk) error) error {
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
	var cur, next *spanRead
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
			cur = s.openSpan(ctx, stream, sp, sp.To != 0 && sp.To == to, backward)
		}
		// A bucket is one query's round trip and one page: read the next
		// while this one is decoded and written, as a raw client reading
		// buckets in parallel would.
		size := sp.To - sp.From + 1 // a span before the last ends at its bucket's end
		if i+1 < len(spans) && !backward && (want == 0 || left > size) {
			n := spans[i+1]
			next = s.openSpan(ctx, stream, n, n.To != 0 && n.To == to, backward)
		}
		err := cur.each(fn)
		cur.close()
		cur = nil
		if err != nil {
			return err
		}
		left -= size
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
}

type decodedChunk struct {
	c   Chunk
	err error
}

// openSpan starts reading sp. bounded: sp.To is the read's own bound, not
// its bucket's end, so the chunk holding it must be found first (a bucket's
// chunks all end in it: buckets tile the stream).
func (s *Store) openSpan(ctx context.Context, stream log.StreamID, sp partition.Span, bounded, backward bool) *spanRead {
	// Its own context: a span read ahead and not wanted after all stops
	// its query rather than being waited for.
	ctx, cancel := context.WithCancel(ctx)
	r := &spanRead{ahead: make(chan decodedChunk, chunksAhead), stop: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	// The rows are scanned and decoded a few chunks ahead of fn, on
	// another goroutine: decoding (zstd, then the record) was about half
	// of a replay's server CPU, and fn's encoding and writing the other
	// half; one after the other they left the second core idle.
	go func() {
		defer close(r.done)
		defer close(r.ahead)
		send := func(d decodedChunk) bool {
			select {
			case r.ahead <- d:
				return true
			case <-r.stop:
				return false
			}
		}
		hi := int64(math.MaxInt64)
		if bounded {
			// The chunk holding To is the first with last_version >= To.
			c, ok, err := s.chunkInfo(ctx, cqlChunkAt, stream, sp.Bucket, sp.To)
			if err != nil {
				send(decodedChunk{err: err})
				return
			}
			if ok {
				hi = c.last
			}
		}
		stmt := cqlChunksAsc
		if backward {
			stmt = cqlChunksDesc
		}
		iter := s.session.Query(stmt, string(stream), sp.Bucket, sp.From, hi).WithContext(ctx).
			Idempotent(true).PageSize(s.pageSize).Prefetch(0.5).Iter()
		var (
			c    Chunk
			body []byte
		)
		for iter.Scan(&c.FirstVersion, &c.LastVersion, &c.Time, &body) {
			appends, err := record.DecodeChunkBody(body)
			if err != nil {
				iter.Close()
				send(decodedChunk{err: fmt.Errorf("stream %s chunk %d: %w", stream, c.LastVersion, err)})
				return
			}
			c.Appends = appends
			if !send(decodedChunk{c: c}) {
				iter.Close()
				return
			}
			body = nil // the decoded events alias it
		}
		if err := iter.Close(); err != nil {
			send(decodedChunk{err: cql.ReadErr("read stream", err)})
		}
	}()
	return r
}

// each calls fn with the span's chunks in order.
func (r *spanRead) each(fn func(*Chunk) error) error {
	for d := range r.ahead {
		if d.err != nil {
			return d.err
		}
		if err := fn(&d.c); err != nil {
			return err
		}
	}
	return nil
}

// close stops the reading goroutine and waits for it.
func (r *spanRead) close() {
	r.cancel()
	close(r.stop)
	<-r.done
}

// chunksAhead is how many decoded chunks a read holds ahead of its
// consumer.
const chunksAhead = 4

// ChunkAt returns the first and last version and time of the chunk holding
// version v in bucket b; ok is false when none does.
func (s *Store) ChunkAt(ctx context.Context, stream log.StreamID, b, v int64) (first, last int64, t time.Time, ok bool, err error) {
	c, ok, err := s.chunkInfo(ctx, cqlChunkAt, stream, b, v)
	return c.first, c.last, c.time, ok, err
}
