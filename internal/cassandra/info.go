package cassandra

import (
	"context"
	"errors"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// schema/schema.cql: snapshots (clustered version DESC).
const cqlLatestSnapshotVersion = `SELECT version FROM snapshots WHERE stream = ? LIMIT 1`

// Info implements log.Store. The head is read with LOCAL_SERIAL, so it
// reflects every acknowledged append, including one whose Paxos round
// another instance left half-finished.
func (s *Store) Info(ctx context.Context, stream log.StreamID) (log.StreamInfo, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.StreamInfo{}, err
	}
	bs, err := s.buckets(ctx, stream)
	if err != nil {
		return log.StreamInfo{}, err
	}
	if len(bs) == 0 {
		return log.StreamInfo{}, log.ErrStreamNotFound
	}
	h, err := s.loadHead(ctx, stream, true)
	if err != nil {
		return log.StreamInfo{}, err
	}
	if h.LastVersion == 0 {
		return log.StreamInfo{}, log.ErrStreamNotFound
	}
	info := log.StreamInfo{
		Stream:        stream,
		Category:      stream.Category(),
		Version:       h.LastVersion,
		UpdatedAt:     h.LastTime,
		Buckets:       len(bs),
		CurrentBucket: h.Bucket,
	}
	if !h.Created {
		info.Buckets-- // indexed, not yet written
	}
	first, _, ok, err := s.readBucketHead(ctx, stream, 0, false)
	if err != nil {
		return log.StreamInfo{}, err
	}
	if ok {
		info.CreatedAt = first.OpenedAt
	}
	err = s.session.Query(cqlLatestSnapshotVersion, string(stream)).WithContext(ctx).Idempotent(true).Scan(&info.LatestSnapshot)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return log.StreamInfo{}, readErr("read latest snapshot version", err)
	}
	return info, nil
}
