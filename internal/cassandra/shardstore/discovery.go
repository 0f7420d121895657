package shardstore

import (
	"context"
	"time"

	"github.com/google/uuid"

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

// readEvent reads the event id of stream for the catalog, from version
// (the first of its chunk) on. Every event of a chunk has its commit's
// time, so the scan stops at the first event of another time; an index
// row written before chunk-first versions points at the event itself.
func (s *Store) readEvent(ctx context.Context, stream log.StreamID, version int64, id uuid.UUID) (log.RecordedEvent, bool, error) {
	var (
		out   log.RecordedEvent
		ok    bool
		first time.Time
	)
	err := s.ReadStream(ctx, log.ReadRange{Stream: stream, From: version}, func(e *log.RecordedEvent) error {
		if first.IsZero() {
			first = e.Time
		}
		if !e.Time.Equal(first) {
			return log.ErrStop
		}
		if e.ID != id {
			return nil
		}
		out, ok = *e, true
		out.Data = append([]byte(nil), e.Data...)
		if e.Metadata != nil {
			out.Metadata = append([]byte(nil), e.Metadata...)
		}
		return log.ErrStop
	})
	return out, ok, err
}
