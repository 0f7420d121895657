package cassandra

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// PutSnapshot implements log.Store (package snapshots), against the
// stream's head as this store reads it.
func (s *Store) PutSnapshot(ctx context.Context, stream log.StreamID, version int64, state json.RawMessage) (log.SnapshotInfo, error) {
	info, err := s.snapshots.Put(ctx, stream, version, state, func(ctx context.Context) (int64, error) {
		h, err := s.loadHead(ctx, stream, false)
		return h.LastVersion, err
	})
	s.countSnapshotError("put_snapshot", err)
	return info, err
}

// LatestSnapshot implements log.Store (package snapshots).
func (s *Store) LatestSnapshot(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	snap, err := s.snapshots.Latest(ctx, stream, maxVersion)
	s.countSnapshotError("read_snapshot", err)
	return snap, err
}

// countSnapshotError counts a snapshot write or read that the cluster
// failed (not a refusal or a missing snapshot).
func (s *Store) countSnapshotError(op string, err error) {
	if errors.Is(err, log.ErrUnavailable) || errors.Is(err, cql.ErrInternal) {
		s.metrics.storageError(op)
	}
}
