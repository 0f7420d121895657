package shardstore

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// ListStreams implements log.Catalog (package catalog).
func (s *Store) ListStreams(ctx context.Context, q log.StreamQuery) (log.StreamPage, error) {
	return s.catalog.ListStreams(ctx, q)
}

// Categories implements log.Catalog (package catalog).
func (s *Store) Categories(ctx context.Context, visible func(string) bool) ([]log.CategoryCount, error) {
	return s.catalog.Categories(ctx, visible)
}

// EventByID implements log.Catalog (package catalog): the id index names
// the stream and version, read like any stream read (its owner writes its
// tail first).
func (s *Store) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	return s.catalog.EventByID(ctx, id, visible)
}

// Cluster implements log.ClusterStore (package topology).
func (s *Store) Cluster(ctx context.Context) (log.ClusterInfo, error) {
	return s.topology.Cluster(ctx)
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
	err = s.streams.Chunks(ctx, stream, bs, version, version, false, func(c *streams.Chunk) error {
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
