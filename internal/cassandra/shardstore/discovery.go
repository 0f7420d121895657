package shardstore

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// ListStreams implements log.Catalog (package catalog).
func (s *Store) ListStreams(ctx context.Context, q log.StreamQuery) (log.StreamPage, error) {
	return s.catalog.ListStreams(ctx, q)
}

// Categories implements log.Catalog (package catalog).
func (s *Store) Categories(ctx context.Context, q log.CategoryQuery) (log.CategoryPage, error) {
	return s.catalog.Categories(ctx, q)
}

// EventByID implements log.Catalog (package catalog): the id index names
// the log row of the event's commit, which names its stream and version,
// read like any stream read (its owner writes its tail first).
func (s *Store) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	return s.catalog.EventByID(ctx, id, visible)
}

// Cluster implements log.ClusterStore (package topology).
func (s *Store) Cluster(ctx context.Context) (log.ClusterInfo, error) {
	return s.topology.Cluster(ctx)
}

// locateInLog finds event id in the log row of shard at seq (segments of
// rows rows): the stream and version of each event of the row with that
// id (one per stream: ids are unique within a stream only), in the
// record's order, with the row's time; none when the row does not hold
// it.
func locateInLog(ctx context.Context, lg *shardlog.Log, rows int64, shard int, seq int64, id uuid.UUID) ([]catalog.Location, error) {
	var out []catalog.Location
	_, _, err := lg.Rows(ctx, shard, shardlog.Segment(seq, rows), seq-1, seq, 1, func(r shardlog.Row) error {
		rec, err := record.DecodeRecord(r.Record)
		if err != nil {
			return &log.CorruptError{Kind: log.CorruptLogRecord, Shard: shard, Segment: shardlog.Segment(seq, rows), Seq: r.Seq, Err: err}
		}
		for _, a := range rec.Appends {
			for i, e := range a.Events {
				if e.ID == id {
					out = append(out, catalog.Location{Stream: a.Stream, Version: a.FirstVersion + int64(i), Time: r.Time})
				}
			}
		}
		return nil
	})
	return out, err
}

// readEvent reads the event id of stream for the catalog from the chunk
// holding version (the id index files an event at its chunk's first
// version; a row written before that points at the event itself): one
// chunk row, after the stream's owner wrote its tail.
func (s *Store) readEvent(ctx context.Context, stream log.StreamID, version int64, id uuid.UUID) (log.RecordedEvent, bool, error) {
	if err := s.seq.Flush(ctx, stream); err != nil {
		return log.RecordedEvent{}, false, err
	}
	bs, err := s.streams.Buckets(ctx, stream)
	if err != nil {
		return log.RecordedEvent{}, false, err
	}
	var (
		out log.RecordedEvent
		ok  bool
	)
	err = s.streams.Chunks(ctx, stream, bs, version, version, false, 1, func(c *streams.Chunk) error {
		v := c.FirstVersion
		for _, a := range c.Appends {
			for _, e := range a.Events {
				if v >= version && e.ID == id {
					out = log.RecordedEvent{Stream: stream, Version: v, ID: e.ID, Type: e.Type, Time: c.Time,
						Data: append([]byte(nil), e.Data...)}
					if e.Metadata != nil {
						out.Metadata = append([]byte(nil), e.Metadata...)
					}
					ok = true
					return log.ErrStop
				}
				v++
			}
		}
		return nil
	})
	if errors.Is(err, log.ErrStop) {
		err = nil
	}
	return out, ok, err
}
