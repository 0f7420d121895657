package shardstore

import (
	"context"

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

// readEvent reads one version of stream for the catalog.
func (s *Store) readEvent(ctx context.Context, stream log.StreamID, version int64) (log.RecordedEvent, bool, error) {
	var (
		out log.RecordedEvent
		ok  bool
	)
	err := s.ReadStream(ctx, log.ReadRange{Stream: stream, From: version, To: version, Limit: 1}, func(e *log.RecordedEvent) error {
		out, ok = *e, true
		out.Data = append([]byte(nil), e.Data...)
		if e.Metadata != nil {
			out.Metadata = append([]byte(nil), e.Metadata...)
		}
		return log.ErrStop
	})
	return out, ok, err
}
