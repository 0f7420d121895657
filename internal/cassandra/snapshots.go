package cassandra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/snapshot"
)

const (
	// schema/schema.cql: snapshots (clustered version DESC).
	cqlPutSnapshot    = `INSERT INTO snapshots (stream, version, created_at, compression, size, data) VALUES (?, ?, ?, ?, ?, ?)`
	cqlLatestSnapshot = `SELECT version, created_at, compression, size, data FROM snapshots WHERE stream = ? AND version <= ? LIMIT 1`
)

// PutSnapshot implements log.Store.
func (s *Store) PutSnapshot(ctx context.Context, stream log.StreamID, version int64, state json.RawMessage) (log.SnapshotInfo, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.SnapshotInfo{}, err
	}
	if len(state) > s.o.Limits.MaxSnapshotBytes {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotTooLarge,
			Message: fmt.Sprintf("snapshot state is %d bytes, limit %d", len(state), s.o.Limits.MaxSnapshotBytes)}
	}
	if !json.Valid(state) {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "snapshot state must be a JSON value"}
	}
	if version < 1 {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotVersion, Message: "snapshot version must be at least 1"}
	}
	h, err := s.loadHead(ctx, stream, false)
	if err != nil {
		return log.SnapshotInfo{}, err
	}
	if version > h.LastVersion {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotVersion,
			Message: fmt.Sprintf("snapshot version %d is above the stream's version %d", version, h.LastVersion)}
	}
	blob := s.codec.Encode(nil, state)
	info := log.SnapshotInfo{
		Stream: stream, Version: version, CreatedAt: s.o.Now().UTC().Truncate(time.Millisecond),
		Size: len(state), StoredSize: len(blob), Compression: snapshot.Compression,
	}
	err = s.session.Query(cqlPutSnapshot, string(stream), version, info.CreatedAt, info.Compression, info.Size, blob).
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		s.metrics.storageError("put_snapshot")
		return log.SnapshotInfo{}, readErr("store snapshot", err)
	}
	return info, nil
}

// LatestSnapshot implements log.Store.
func (s *Store) LatestSnapshot(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.Snapshot{}, err
	}
	if maxVersion <= 0 {
		maxVersion = math.MaxInt64
	}
	var (
		snap log.Snapshot
		blob []byte
	)
	err := s.session.Query(cqlLatestSnapshot, string(stream), maxVersion).WithContext(ctx).Idempotent(true).
		Scan(&snap.Version, &snap.CreatedAt, &snap.Compression, &snap.Size, &blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return log.Snapshot{}, log.ErrSnapshotNotFound
	}
	if err != nil {
		s.metrics.storageError("read_snapshot")
		return log.Snapshot{}, readErr("read snapshot", err)
	}
	if snap.Compression != snapshot.Compression {
		return log.Snapshot{}, fmt.Errorf("snapshot %s@%d: %w: unknown compression %q", stream, snap.Version, log.ErrSnapshotCorrupt, snap.Compression)
	}
	state, err := s.codec.Decode(make([]byte, 0, min(max(snap.Size, 0), s.o.Limits.MaxSnapshotBytes)), blob)
	if err != nil {
		s.logger.Error("corrupt snapshot", "stream", string(stream), "version", snap.Version, "err", err)
		return log.Snapshot{}, fmt.Errorf("snapshot %s@%d: %w: %v", stream, snap.Version, log.ErrSnapshotCorrupt, err)
	}
	snap.Stream, snap.State, snap.StoredSize = stream, state, len(blob)
	return snap, nil
}
