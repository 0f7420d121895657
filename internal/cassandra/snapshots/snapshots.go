// Package snapshots stores aggregate snapshots (schema/schema.cql:
// snapshots): zstd-compressed states, newest first, so "the latest at or
// below V" is one forward read. A stored blob that fails its integrity
// check is reported as log.ErrSnapshotCorrupt, never served. A put at a
// version that has a snapshot replaces it, and of two puts the later by
// Cassandra's clock wins, whatever the clocks of the instances they went
// through (dbclock).
package snapshots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/dbclock"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/snapshot"
)

// schema/schema.cql: snapshots (clustered version DESC).
const (
	cqlPut    = `INSERT INTO snapshots (stream, version, created_at, compression, size, data) VALUES (?, ?, ?, ?, ?, ?)`
	cqlLatest = `SELECT version, created_at, compression, size, data FROM snapshots WHERE stream = ? AND version <= ? LIMIT 1`
	cqlSizes  = `SELECT version, size FROM snapshots WHERE stream = ? AND version <= ? LIMIT ?`
)

// maxSizesScanned bounds the snapshots Latest looks through, by their
// sizes alone, for one within the limit when the newest is over it.
const maxSizesScanned = 100

// MaxStoredBytes bounds a stored (compressed) snapshot: Cassandra refuses
// a mutation over half its commit log segment and a CQL message over
// native_transport_max_frame_size, 16 MiB each by default, and the row's
// other columns and the request's framing need room too. A state within
// the configured limit that does not compress below it is refused as too
// large (with a limit past 16 MiB it reached Cassandra, whose refusal was
// a 500).
const MaxStoredBytes = 15 << 20

// Store is the snapshots table of one keyspace.
type Store struct {
	session  *gocql.Session
	codec    *snapshot.Codec
	maxBytes int
	clock    *dbclock.Clock
	logger   *slog.Logger

	mu   sync.Mutex
	last time.Time // the newest put's timestamp

	warned atomic.Int64 // when a snapshot over the limit was last logged (Unix seconds)
}

// New returns the snapshots over session; maxBytes bounds a state. now is
// this instance's clock, which dbclock corrects to Cassandra's.
func New(session *gocql.Session, codec *snapshot.Codec, maxBytes int, now func() time.Time, logger *slog.Logger) *Store {
	return &Store{session: session, codec: codec, maxBytes: maxBytes, clock: &dbclock.Clock{Session: session, Local: now}, logger: logger}
}

// stamp is a put's write timestamp and created_at: Cassandra's clock, so
// that a put again at a version (PUT replaces) beats the puts before it
// through any instance. A plain write at the instance's clock let a put
// through an instance hours ahead beat, for those hours, every later put
// at its version, each answered 201 and never served. Strictly
// increasing on this instance, as the offset is measured again and the
// local clock may step back.
func (s *Store) stamp(ctx context.Context) time.Time {
	t := s.clock.Now(ctx).UTC().Truncate(time.Microsecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.After(s.last) {
		t = s.last.Add(time.Microsecond)
	}
	s.last = t
	return t
}

// Put stores state as the aggregate state of stream at version, which
// must be 1..head; head reads the stream's version, and is called only
// once the request is otherwise valid.
func (s *Store) Put(ctx context.Context, stream log.StreamID, version int64, state json.RawMessage, head func(context.Context) (int64, error)) (log.SnapshotInfo, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.SnapshotInfo{}, err
	}
	if len(state) > s.maxBytes {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotTooLarge,
			Message: fmt.Sprintf("snapshot state is %d bytes, limit %d", len(state), s.maxBytes)}
	}
	if !json.Valid(state) || !utf8.Valid(state) {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "snapshot state must be a JSON value in UTF-8"}
	}
	if version < 1 {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotVersion, Message: "snapshot version must be at least 1"}
	}
	h, err := head(ctx)
	if err != nil {
		return log.SnapshotInfo{}, err
	}
	if version > h {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotVersion,
			Message: fmt.Sprintf("snapshot version %d is above the stream's version %d", version, h)}
	}
	blob := s.codec.Encode(nil, state)
	if len(blob) > MaxStoredBytes {
		return log.SnapshotInfo{}, &log.ValidationError{Code: log.CodeSnapshotTooLarge,
			Message: fmt.Sprintf("snapshot state compresses to %d bytes, more than one Cassandra write holds (%d)", len(blob), MaxStoredBytes)}
	}
	at := s.stamp(ctx)
	info := log.SnapshotInfo{
		Stream: stream, Version: version, CreatedAt: at.Truncate(time.Millisecond),
		Size: len(state), StoredSize: len(blob), Compression: snapshot.Compression,
	}
	// One attempt, not marked idempotent: the driver hands back only its
	// last attempt's error, and after a first one that timed out (stored,
	// maybe) a retry refused Unavailable would read as nothing written
	// (WriteErr). The client puts it again. One timestamp, so a put sent
	// again cannot beat a later one.
	err = s.session.Query(cqlPut, string(stream), version, info.CreatedAt, info.Compression, info.Size, blob).
		WithContext(ctx).WithTimestamp(at.UnixMicro()).Exec()
	if err != nil {
		// Not ReadErr: a put that timed out may be stored, and
		// "unavailable" says nothing was written.
		return log.SnapshotInfo{}, cql.WriteErr("store snapshot", err)
	}
	return info, nil
}

// Latest returns the newest snapshot at or below maxVersion (0: any), or
// log.ErrSnapshotNotFound.
//
// A snapshot whose state is over the size limit (stored while the server
// ran with a higher --max-snapshot-bytes) is intact but not decoded, to
// keep the limit's memory bound: it is skipped, as if absent, for the
// newest one within the limit below it. It was reported corrupt, so every
// state load of its stream failed until a newer snapshot was stored, which
// an application that snapshots the states it loads never managed.
func (s *Store) Latest(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.Snapshot{}, err
	}
	if maxVersion <= 0 {
		maxVersion = math.MaxInt64
	}
	// A few rounds: a put between fitting and latest may have stored
	// another snapshot over the limit below the one skipped.
	for range 3 {
		snap, err := s.latest(ctx, stream, maxVersion)
		if !errors.Is(err, snapshot.ErrTooLarge) {
			return snap, err
		}
		if now := time.Now().Unix(); s.warned.Swap(now) < now-60 { // a line a minute, not a load
			s.logger.Warn("snapshot over the size limit skipped", "stream", string(stream), "version", snap.Version, "size", snap.Size, "limit", s.maxBytes)
		}
		v, ok, err := s.fitting(ctx, stream, snap.Version-1)
		switch {
		case err != nil:
			return log.Snapshot{}, err
		case !ok:
			return log.Snapshot{}, log.ErrSnapshotNotFound
		}
		maxVersion = v
	}
	// None within the limit found: the state is loaded from the events.
	return log.Snapshot{}, log.ErrSnapshotNotFound
}

// fitting returns the version of the newest snapshot at or below
// maxVersion whose state is within the limit, by the size stored with it
// (ok false: none among the newest maxSizesScanned).
func (s *Store) fitting(ctx context.Context, stream log.StreamID, maxVersion int64) (int64, bool, error) {
	iter := s.session.Query(cqlSizes, string(stream), maxVersion, maxSizesScanned).WithContext(ctx).Idempotent(true).Iter()
	var (
		v    int64
		size int
	)
	for iter.Scan(&v, &size) {
		if size <= s.maxBytes {
			if err := iter.Close(); err != nil {
				return 0, false, cql.ReadErr("read snapshot sizes", err)
			}
			return v, true, nil
		}
	}
	if err := iter.Close(); err != nil {
		return 0, false, cql.ReadErr("read snapshot sizes", err)
	}
	return 0, false, nil
}

// latest reads and decodes the newest snapshot at or below maxVersion. A
// state over the limit is an error matching snapshot.ErrTooLarge, with the
// snapshot's version and size set.
func (s *Store) latest(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	var (
		snap log.Snapshot
		blob []byte
	)
	err := s.session.Query(cqlLatest, string(stream), maxVersion).WithContext(ctx).Idempotent(true).
		Scan(&snap.Version, &snap.CreatedAt, &snap.Compression, &snap.Size, &blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return log.Snapshot{}, log.ErrSnapshotNotFound
	}
	if err != nil {
		return log.Snapshot{}, cql.ReadErr("read snapshot", err)
	}
	if snap.Compression != snapshot.Compression {
		return log.Snapshot{}, &log.CorruptError{Kind: log.CorruptSnapshot, Stream: stream, Bucket: -1, First: snap.Version, Last: snap.Version,
			Err: fmt.Errorf("%w: unknown compression %q", log.ErrSnapshotCorrupt, snap.Compression)}
	}
	state, err := s.codec.Decode(make([]byte, 0, min(max(snap.Size, 0), s.maxBytes)), blob)
	if errors.Is(err, snapshot.ErrTooLarge) {
		return snap, err
	}
	if err != nil {
		// Logged by whoever gets the error (the HTTP layer's error line
		// with the key, or Info, which skips it): once an occurrence.
		return log.Snapshot{}, &log.CorruptError{Kind: log.CorruptSnapshot, Stream: stream, Bucket: -1, First: snap.Version, Last: snap.Version,
			Err: fmt.Errorf("%w: %v", log.ErrSnapshotCorrupt, err)}
	}
	snap.Stream, snap.State, snap.StoredSize = stream, state, len(blob)
	return snap, nil
}
