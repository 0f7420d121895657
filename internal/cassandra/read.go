package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

const (
	// schema/schema.cql: stream_buckets (clustered bucket DESC).
	cqlBuckets = `SELECT bucket, first_version FROM stream_buckets WHERE stream = ?`
	// schema/schema.cql: events.
	cqlReadAsc  = `SELECT version, id, type, time, data, metadata FROM events WHERE stream = ? AND bucket = ? AND version >= ? AND version <= ?`
	cqlReadDesc = cqlReadAsc + ` ORDER BY version DESC`
)

// buckets returns the stream's bucket index in ascending order.
func (s *Store) buckets(ctx context.Context, stream log.StreamID) ([]partition.Bucket, error) {
	iter := s.session.Query(cqlBuckets, string(stream)).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []partition.Bucket
		b   partition.Bucket
	)
	for iter.Scan(&b.Number, &b.FirstVersion) {
		out = append(out, b)
	}
	if err := iter.Close(); err != nil {
		s.metrics.storageError("read_index")
		return nil, readErr("read bucket index", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ReadStream implements log.Store. The event passed to fn is reused for the
// next one: fn must copy what it keeps (its byte slices it may keep).
func (s *Store) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	if _, err := log.ParseStreamID(string(r.Stream)); err != nil {
		return err
	}
	if r.From < 0 || r.To < 0 || r.Limit < 0 || r.To != 0 && r.To < r.From {
		return &log.ValidationError{Code: log.CodeInvalidVersion, Message: fmt.Sprintf("invalid range from=%d to=%d", r.From, r.To)}
	}
	bs, err := s.buckets(ctx, r.Stream)
	if err != nil || len(bs) == 0 {
		return err
	}
	if !r.UntilTime.IsZero() {
		v, err := s.versionAt(ctx, r.Stream, bs, r.UntilTime)
		if err != nil {
			return err
		}
		var ok bool
		if r, ok = r.Cut(v); !ok {
			return nil
		}
	}
	spans := partition.Locate(bs, r.From, r.To)
	if r.Backward {
		for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
			spans[i], spans[j] = spans[j], spans[i]
		}
	}
	left := r.Limit
	if left == 0 {
		left = math.MaxInt
	}
	ev := log.RecordedEvent{Stream: r.Stream}
	// While one bucket is consumed, the first page of the next is already
	// fetched (read-ahead of one bucket, so memory stays at about two
	// pages); within a bucket the driver prefetches the next page.
	iter := s.openSpan(ctx, r.Stream, spans[0], r.Backward, left)
	for i, sp := range spans {
		var next chan *gocql.Iter
		// Read ahead only when this span's length is known and the limit
		// reaches past it (a "last 10 events" read fetches nothing more).
		if i+1 < len(spans) && sp.To != 0 && int64(left) > sp.To-sp.From+1 {
			next = make(chan *gocql.Iter, 1)
			go func(sp partition.Span, left int) { next <- s.openSpan(ctx, r.Stream, sp, r.Backward, left) }(spans[i+1], left-int(sp.To-sp.From+1))
		}
		n, err := s.consume(iter, sp, left, &ev, fn)
		left -= n
		if err != nil || left <= 0 || i+1 == len(spans) {
			if next != nil {
				go func() { (<-next).Close() }()
			}
			if errors.Is(err, log.ErrStop) {
				return nil
			}
			return err
		}
		if next != nil {
			iter = <-next
		} else {
			iter = s.openSpan(ctx, r.Stream, spans[i+1], r.Backward, left)
		}
	}
	return nil
}

// openSpan starts the read of one bucket's part of a range: the driver
// fetches the first page before it returns.
func (s *Store) openSpan(ctx context.Context, stream log.StreamID, sp partition.Span, backward bool, limit int) *gocql.Iter {
	to := sp.To
	if to == 0 {
		to = math.MaxInt64
	}
	stmt := cqlReadAsc
	if backward {
		stmt = cqlReadDesc
	}
	pageSize := s.o.PageSize
	if limit > 0 && limit < pageSize {
		pageSize = limit
	}
	return s.session.Query(stmt, string(stream), sp.Bucket, sp.From, to).
		WithContext(ctx).Idempotent(true).PageSize(pageSize).Prefetch(0.5).Iter()
}

// consume calls fn for at most limit events of iter and closes it. It
// returns how many it passed to fn.
func (s *Store) consume(iter *gocql.Iter, sp partition.Span, limit int, ev *log.RecordedEvent, fn func(*log.RecordedEvent) error) (int, error) {
	n := 0
	for n < limit && iter.Scan(&ev.Version, (*[16]byte)(&ev.ID), &ev.Type, &ev.Time, &ev.Data, &ev.Metadata) {
		n++
		if err := fn(ev); err != nil {
			iter.Close()
			return n, err
		}
	}
	if err := iter.Close(); err != nil {
		s.metrics.storageError("read")
		return n, readErr(fmt.Sprintf("read bucket %d", sp.Bucket), err)
	}
	return n, nil
}
