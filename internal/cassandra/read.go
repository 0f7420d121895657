package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math"

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
	for _, sp := range spans {
		n, err := s.readSpan(ctx, r.Stream, sp, r.Backward, left, &ev, fn)
		if errors.Is(err, log.ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
		if left -= n; left <= 0 {
			return nil
		}
	}
	return nil
}

// readSpan reads one bucket's part of a range, page by page, calling fn for
// at most limit events. It returns how many it passed to fn.
func (s *Store) readSpan(ctx context.Context, stream log.StreamID, sp partition.Span, backward bool, limit int, ev *log.RecordedEvent, fn func(*log.RecordedEvent) error) (int, error) {
	to := sp.To
	if to == 0 {
		to = math.MaxInt64
	}
	stmt := cqlReadAsc
	if backward {
		stmt = cqlReadDesc
	}
	pageSize := s.o.PageSize
	if limit < pageSize {
		pageSize = limit
	}
	iter := s.session.Query(stmt, string(stream), sp.Bucket, sp.From, to).
		WithContext(ctx).Idempotent(true).PageSize(pageSize).Iter()
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
