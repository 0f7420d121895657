package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
	"github.com/eventlog/eventlog/internal/snapshot"
)

// schema/schema.cql: keyspace_config, shards, shard_log, stream_events,
// snapshots.
const (
	cqlShardCount = `SELECT shards FROM keyspace_config WHERE id = 0`
	cqlSegments   = `SELECT shard, segment FROM shards`
	// A segment's rows with its statics; a segment that exists without
	// rows gives one row of statics (seq null), one that does not exist
	// none.
	cqlLogRows = `SELECT seq, filled, record FROM shard_log WHERE shard = ? AND segment = ?`
	// Stream rows by token range of the partition key. A partition that
	// holds only its static row (low ids) gives one row whose clustering
	// key is null.
	cqlStreamRows = `SELECT stream, bucket, last_version, first_version, record, ids FROM stream_events WHERE token(stream, bucket) >= ? AND token(stream, bucket) <= ?`
	cqlSnapshots  = `SELECT stream, version, compression, data FROM snapshots WHERE token(stream) >= ? AND token(stream) <= ?`
)

// Options say what Run reads and how fast.
type Options struct {
	// Streams: also every stream row (stream_events), not only the shard
	// logs. Default false.
	Streams bool
	// Snapshots: also every snapshot, decoded as a read decodes it with
	// MaxSnapshotBytes (one whose state is larger is skipped, as the
	// server skips it). Default false.
	Snapshots        bool
	MaxSnapshotBytes int
	// Concurrency is how many shards, or token ranges of stream_events,
	// are read at once. Default 4.
	Concurrency int
	// Rate bounds the rows read a second, over all of them (0: none).
	Rate float64
	// Limiter, when set, spaces the rows read instead of one Run would
	// make from Rate, so that other reads can share the one bound
	// (`server verify --repair` reads the shard logs back under it).
	Limiter *Limiter
	// PageSize is the rows a query page holds. Default 16 (a row may be a
	// block of up to 1 MiB).
	PageSize int
	// Ranges is how many token ranges stream_events is read in. Default
	// 16 × Concurrency.
	Ranges int
}

// EnsureDefaults fills the options left zero.
func (o *Options) EnsureDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.PageSize == 0 {
		o.PageSize = 16
	}
	if o.Ranges == 0 {
		o.Ranges = 16 * o.Concurrency
	}
}

// Validate refuses options that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Concurrency < 1:
		return errors.New("verify: concurrency must be at least 1")
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return errors.New("verify: rate must be 0 (none) or a positive number of rows a second")
	case o.PageSize < 1 || o.Ranges < 1:
		return errors.New("verify: page size and ranges must be at least 1")
	case o.Snapshots && o.MaxSnapshotBytes < 1:
		return errors.New("verify: snapshots need the largest snapshot state (MaxSnapshotBytes)")
	}
	return nil
}

// Finding is one corrupt row.
type Finding struct {
	*log.CorruptError
	// Filled, for a log record: its seq is at or below its shard's filled
	// mark, so its chunks were written to the stream partitions before
	// it was found corrupt.
	Filled bool
}

// Report counts what Run read.
type Report struct {
	Shards     int
	Segments   int64
	LogRecords int64
	StreamRows int64
	Snapshots  int64
	// SnapshotsSkipped are snapshots over MaxSnapshotBytes: not checked.
	SnapshotsSkipped int64
	Corrupt          int64
}

// Run reads and checks the keyspace's stored rows (see the package doc),
// calling found (never concurrently) with each corrupt one as it is
// found. It returns what it read, and an error when it could not read
// everything (Cassandra failing, ctx done): then the report and findings
// cover only part of the keyspace.
func Run(ctx context.Context, session *gocql.Session, o Options, found func(Finding)) (Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	limit := o.Limiter
	if limit == nil {
		limit = NewLimiter(o.Rate)
	}
	v := &verifier{session: session, o: o, found: found, limit: limit}
	var shards int
	if err := session.Query(cqlShardCount).WithContext(ctx).Idempotent(true).Scan(&shards); err != nil {
		return Report{}, cql.ReadErr("read keyspace_config", err)
	}
	hints := make([]int64, shards)
	iter := session.Query(cqlSegments).WithContext(ctx).Idempotent(true).Iter()
	var (
		shard int
		seg   *int64
	)
	for iter.Scan(&shard, &seg) {
		if shard >= 0 && shard < shards && seg != nil {
			hints[shard] = *seg
		}
	}
	if err := iter.Close(); err != nil {
		return Report{}, cql.ReadErr("read shards", err)
	}
	err := each(ctx, o.Concurrency, shards, func(ctx context.Context, s int) error { return v.shard(ctx, s, hints[s]) })
	if err == nil && o.Streams {
		err = each(ctx, o.Concurrency, o.Ranges, func(ctx context.Context, i int) error {
			lo, hi := tokenRange(i, o.Ranges)
			return v.streamRange(ctx, lo, hi)
		})
	}
	if err == nil && o.Snapshots {
		err = each(ctx, o.Concurrency, o.Ranges, func(ctx context.Context, i int) error {
			lo, hi := tokenRange(i, o.Ranges)
			return v.snapshotRange(ctx, lo, hi)
		})
	}
	return Report{
		Shards:           shards,
		Segments:         v.segments.Load(),
		LogRecords:       v.logRecords.Load(),
		StreamRows:       v.streamRows.Load(),
		Snapshots:        v.snapshots.Load(),
		SnapshotsSkipped: v.snapshotsSkipped.Load(),
		Corrupt:          v.corrupt.Load(),
	}, err
}

type verifier struct {
	session *gocql.Session
	o       Options
	limit   *Limiter

	mu    sync.Mutex // serialises found
	found func(Finding)

	segments, logRecords, streamRows, snapshots, snapshotsSkipped, corrupt atomic.Int64
}

func (v *verifier) report1(f Finding) {
	v.corrupt.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.found(f)
}

// shard checks every record of every segment of shard: from segment 0
// through the shards table's hint, then on while segments exist (the hint
// may trail the segment taking commits).
func (v *verifier) shard(ctx context.Context, shard int, hint int64) error {
	var (
		bad    []Finding
		filled int64 // the highest filled mark of the shard's segments
	)
	for g := int64(0); ; g++ {
		exists, f, err := v.segment(ctx, shard, g, &bad)
		if err != nil {
			return err
		}
		filled = max(filled, f)
		if !exists && g >= hint {
			break
		}
	}
	for _, b := range bad {
		b.Filled = b.Seq <= filled
		v.report1(b)
	}
	return nil
}

// segment checks the records of one segment, adding the corrupt ones to
// bad; exists is false when the segment has neither statics nor rows.
func (v *verifier) segment(ctx context.Context, shard int, g int64, bad *[]Finding) (exists bool, filled int64, err error) {
	iter := v.session.Query(cqlLogRows, shard, g).WithContext(ctx).Idempotent(true).PageSize(v.o.PageSize).Iter()
	var (
		seq, fill *int64
		rec       []byte
	)
	for iter.Scan(&seq, &fill, &rec) {
		if !exists {
			exists = true
			v.segments.Add(1)
		}
		if fill != nil {
			filled = max(filled, *fill)
		}
		if seq != nil {
			if err := v.limit.Wait(ctx); err != nil {
				iter.Close()
				return exists, filled, err
			}
			v.logRecords.Add(1)
			if err := checkLogRecord(rec); err != nil {
				*bad = append(*bad, Finding{CorruptError: &log.CorruptError{Kind: log.CorruptLogRecord, Shard: shard, Segment: g, Seq: *seq, Err: err}})
			}
		}
		seq, fill, rec = nil, nil, nil
	}
	if err := iter.Close(); err != nil {
		return exists, filled, cql.ReadErr(fmt.Sprintf("read shard %d segment %d", shard, g), err)
	}
	return exists, filled, nil
}

// checkLogRecord checks a log record as a takeover's catch-up does.
func checkLogRecord(b []byte) error {
	if b == nil {
		return fmt.Errorf("%w: no record", record.ErrCorrupt)
	}
	r, err := record.DecodeRecord(b)
	if err != nil {
		return err
	}
	return r.CheckNames()
}

// streamRange checks the stream rows of one token range.
func (v *verifier) streamRange(ctx context.Context, lo, hi int64) error {
	iter := v.session.Query(cqlStreamRows, lo, hi).WithContext(ctx).Idempotent(true).PageSize(v.o.PageSize).Iter()
	var (
		stream      string
		bucket      int64
		last, first *int64
		body, ids   []byte
	)
	for iter.Scan(&stream, &bucket, &last, &first, &body, &ids) {
		if last != nil { // else the partition's static row alone
			if err := v.limit.Wait(ctx); err != nil {
				iter.Close()
				return err
			}
			v.streamRows.Add(1)
			fv := int64(0)
			if first != nil {
				fv = *first
			}
			kind, err := checkStreamRow(fv, *last, body, ids)
			if err != nil {
				v.report1(Finding{CorruptError: &log.CorruptError{Kind: kind, Stream: log.StreamID(stream), Bucket: bucket, First: fv, Last: *last, Err: err}})
			}
		}
		last, first, body, ids = nil, nil, nil, nil
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("read stream_events", err)
	}
	return nil
}

// checkStreamRow checks a stream row as a read does (its body, each part
// of a run, each holding exactly the events of its versions) and its ids
// column as an id lookup does, and says which kind of row failed.
func checkStreamRow(first, last int64, body, ids []byte) (kind string, err error) {
	kind = log.CorruptChunk
	switch {
	case body == nil:
		err = fmt.Errorf("%w: no record", record.ErrCorrupt)
	case first < 1 || first > last:
		err = fmt.Errorf("%w: versions %d..%d", record.ErrCorrupt, first, last)
	case record.IsRun(body):
		kind = log.CorruptRun
		err = record.DecodeRun(body, first, last, func(p *record.Part) error {
			return checkChunk(p.FirstVersion, p.LastVersion, p.Body)
		})
	default:
		err = checkChunk(first, last, body)
	}
	if err != nil {
		return kind, err
	}
	if ids != nil {
		if err := record.DecodeChunkIDs(ids, first, func(uuid.UUID, int64) {}); err != nil {
			return log.CorruptChunkIDs, err
		}
	}
	return "", nil
}

// checkChunk decodes a chunk body and checks it holds the events of
// first..last.
func checkChunk(first, last int64, body []byte) error {
	appends, err := record.DecodeChunkBody(body)
	if err != nil {
		return err
	}
	n := int64(0)
	for i := range appends {
		n += int64(len(appends[i].Events))
	}
	if n != last-first+1 {
		return fmt.Errorf("%w: chunk %d..%d holds %d events", record.ErrCorrupt, first, last, n)
	}
	return nil
}

// snapshotRange checks the snapshots of one token range as a read of
// them does (its compression, then the codec's header, frame, length and
// checksum).
func (v *verifier) snapshotRange(ctx context.Context, lo, hi int64) error {
	codec, err := snapshot.NewCodec(v.o.MaxSnapshotBytes)
	if err != nil {
		return err
	}
	defer codec.Close()
	iter := v.session.Query(cqlSnapshots, lo, hi).WithContext(ctx).Idempotent(true).PageSize(v.o.PageSize).Iter()
	var (
		stream      string
		version     int64
		compression string
		data, buf   []byte
	)
	for iter.Scan(&stream, &version, &compression, &data) {
		if err := v.limit.Wait(ctx); err != nil {
			iter.Close()
			return err
		}
		v.snapshots.Add(1)
		if compression != snapshot.Compression {
			err = fmt.Errorf("%w: unknown compression %q", log.ErrSnapshotCorrupt, compression)
		} else {
			buf, err = codec.Decode(buf[:0], data)
		}
		switch {
		case errors.Is(err, snapshot.ErrTooLarge):
			v.snapshotsSkipped.Add(1)
		case err != nil:
			if !errors.Is(err, log.ErrSnapshotCorrupt) {
				err = fmt.Errorf("%w: %v", log.ErrSnapshotCorrupt, err)
			}
			v.report1(Finding{CorruptError: &log.CorruptError{Kind: log.CorruptSnapshot, Stream: log.StreamID(stream), Bucket: -1, First: version, Last: version, Err: err}})
		}
		data = nil
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("read snapshots", err)
	}
	return nil
}

// tokenRange is the i-th of n contiguous inclusive ranges that tile the
// Murmur3 token ring [MinInt64, MaxInt64].
func tokenRange(i, n int) (lo, hi int64) {
	const ring0 = uint64(1) << 63 // MinInt64's bits
	step := math.MaxUint64/uint64(n) + 1
	lo = int64(ring0 + uint64(i)*step)
	if i == n-1 {
		return lo, math.MaxInt64
	}
	return lo, int64(ring0 + uint64(i+1)*step - 1)
}

// each runs fn for 0..n-1, at most limit at once, and returns the first
// error (the others are stopped through their context).
func each(ctx context.Context, limit, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	for range min(limit, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Limiter spaces rows 1/rate seconds apart over all readers: a unit of
// the rate is one row read from Cassandra (a shard log record, a stream
// row, a snapshot; for a repair, a shard log row read back or a stream
// row of the repaired one's bucket). A nil *Limiter sets no limit. Safe
// for concurrent use.
type Limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

// NewLimiter returns a Limiter of rate rows a second (nil, no limit, for
// a rate of 0 or less).
func NewLimiter(rate float64) *Limiter {
	if rate <= 0 {
		return nil
	}
	// A rate below about 1e-10 a second has an interval past the
	// largest Duration, which the conversion would turn negative (no
	// limit at all): it is the largest instead.
	iv := float64(time.Second) / rate
	if iv >= math.MaxInt64 {
		return &Limiter{interval: math.MaxInt64}
	}
	return &Limiter{interval: time.Duration(iv)}
}

// Wait returns when the next row may be read, or with ctx's error.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}
