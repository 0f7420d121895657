package cassandra

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/snapshot"
)

const (
	// schema/schema.cql: events. Appends to a created bucket are guarded by
	// its head; the first append to a bucket requires it to be empty.
	cqlAppendHead = `UPDATE events SET last_version = ?, last_time = ? WHERE stream = ? AND bucket = ? IF last_version = ? AND sealed = false`
	cqlOpenBucket = `UPDATE events SET first_version = ?, last_version = ?, last_time = ?, opened_at = ?, sealed = false WHERE stream = ? AND bucket = ? IF last_version = null`
	cqlInsert     = `INSERT INTO events (stream, bucket, version, id, type, time, data, metadata, append_first, append_last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	cqlSeal       = `UPDATE events SET sealed = true WHERE stream = ? AND bucket = ? IF last_version = ? AND sealed = false`
	// schema/schema.cql: stream_buckets.
	cqlIndexBucket = `INSERT INTO stream_buckets (stream, bucket, first_version) VALUES (?, ?, ?)`
)

// maxAttempts bounds the conditional writes of one append under contention
// before it gives up with ErrUnavailable (nothing of it written).
const maxAttempts = 64

// Store is a log.Store on Cassandra. See the package doc for the model.
type Store struct {
	o       Options
	session *gocql.Session
	serial  gocql.Consistency
	policy  partition.Policy
	heads   *headCache
	locks   *streamLocks
	codec   *snapshot.Codec
	metrics *metrics
	logger  *slog.Logger
	// beforeWrite, if set, runs just before each conditional append batch
	// is sent (fault-injection tests; see export_test.go).
	beforeWrite func()
}

var _ log.Store = (*Store)(nil)

// Open connects to the cluster and checks that the keyspace holds the
// schema version this binary knows (ErrSchemaMismatch otherwise).
func Open(ctx context.Context, o Options) (*Store, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cluster, err := newCluster(&o, o.Keyspace)
	if err != nil {
		return nil, err
	}
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w: %v", o.Hosts, log.ErrUnavailable, err)
	}
	s := &Store{
		o:       o,
		session: session,
		serial:  cluster.SerialConsistency,
		policy:  partition.Policy{Width: o.BucketWidth, MaxEvents: o.BucketMaxEvents},
		heads:   newHeadCache(100_000),
		locks:   newStreamLocks(),
		logger:  o.Logger,
		metrics: newMetrics(o.Registerer),
	}
	if s.codec, err = snapshot.NewCodec(o.Limits.MaxSnapshotBytes); err != nil {
		session.Close()
		return nil, err
	}
	if err := s.checkSchema(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.checkPaxos(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the session.
func (s *Store) Close() {
	s.session.Close()
	if s.codec != nil {
		s.codec.Close()
	}
}

// Options returns the options the store runs with, defaults filled in.
func (s *Store) Options() Options { return s.o }

// Ready reports whether Cassandra answers and the schema is current.
func (s *Store) Ready(ctx context.Context) error {
	return s.checkSchema(ctx)
}

// Append implements log.Store.
func (s *Store) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	// Validate fills in ids and compacts JSON: work on our own copy, never
	// on the caller's events.
	req.Events = slices.Clone(req.Events)
	if err := req.Validate(s.o.Limits); err != nil {
		return log.AppendResult{}, err
	}
	unlock, err := s.locks.lock(ctx, req.Stream)
	if err != nil {
		return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", req.Stream, log.ErrUnavailable, err)
	}
	defer unlock()
	return s.append(ctx, &req)
}

func (s *Store) append(ctx context.Context, req *log.AppendRequest) (log.AppendResult, error) {
	var err error
	h, cached := s.heads.get(req.Stream)
	if !cached {
		if h, err = s.loadHead(ctx, req.Stream, false); err != nil {
			return log.AppendResult{}, err
		}
	}
	ids := clientIDs(req)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur := h.LastVersion
		// Retries are recognised against the state at cur; the condition
		// below makes the write fail if the stream moves past cur, so the
		// check and the write are atomic together.
		if len(ids) > 0 {
			res, done, err := s.findStored(ctx, req, ids, h.Bucket, cur)
			if done || err != nil {
				return res, err
			}
		}
		if !req.Expected.Matches(cur) {
			if cached {
				// Another instance may have moved the stream: a conflict is
				// reported only against a head read from Cassandra.
				cached = false
				if h, err = s.loadHead(ctx, req.Stream, false); err != nil {
					return log.AppendResult{}, err
				}
				continue
			}
			return log.AppendResult{}, &log.WrongExpectedVersionError{Stream: req.Stream, Expected: req.Expected, Current: cur}
		}
		now := s.o.Now().UTC().Truncate(time.Millisecond)
		if s.policy.MustSeal(h.Head, len(req.Events), now) {
			if h, err = s.seal(ctx, req.Stream, h); err != nil {
				return log.AppendResult{}, err
			}
			continue
		}
		if !h.indexed {
			if err := s.index(ctx, req.Stream, h.Bucket, h.FirstVersion); err != nil {
				return log.AppendResult{}, err
			}
			h.indexed = true
		}
		if len(ids) > 0 {
			if err := s.recordIDs(ctx, req, h.Bucket, cur); err != nil {
				return log.AppendResult{}, err
			}
		}
		at := partition.EventTime(h.Head, now)
		applied, err := s.write(ctx, req, h, at, now)
		if err != nil {
			s.heads.forget(req.Stream)
			return log.AppendResult{}, err
		}
		if applied {
			next := h
			next.LastVersion = cur + int64(len(req.Events))
			next.LastTime = at
			if !h.Created {
				next.Created, next.OpenedAt = true, now
			}
			s.heads.put(req.Stream, next)
			return result(req, cur+1, false), nil
		}
		s.metrics.casConflicts.Inc()
		if err := backoff(ctx, attempt); err != nil {
			return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", req.Stream, log.ErrUnavailable, err)
		}
		cached = false
		if h, err = s.loadHead(ctx, req.Stream, false); err != nil {
			return log.AppendResult{}, err
		}
	}
	s.heads.forget(req.Stream)
	return log.AppendResult{}, fmt.Errorf("append to %s: %w: gave up after %d contended attempts", req.Stream, log.ErrUnavailable, maxAttempts)
}

// backoff waits a random time that grows with attempt (up to ~100ms), so
// instances contending for one stream stop colliding in lockstep.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write sends the append as one conditional batch on the head bucket's
// partition.
func (s *Store) write(ctx context.Context, req *log.AppendRequest, h head, at, now time.Time) (bool, error) {
	stream := string(req.Stream)
	cur := h.LastVersion
	last := cur + int64(len(req.Events))
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	if h.Created {
		b.Query(cqlAppendHead, last, at, stream, h.Bucket, cur)
	} else {
		b.Query(cqlOpenBucket, h.FirstVersion, last, at, now, stream, h.Bucket)
	}
	for i := range req.Events {
		ev := &req.Events[i]
		var meta []byte
		if len(ev.Metadata) > 0 {
			meta = ev.Metadata
		}
		b.Query(cqlInsert, stream, h.Bucket, cur+1+int64(i), [16]byte(ev.ID), ev.Type, at, []byte(ev.Data), meta, cur+1, last)
	}
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	applied, iter, err := b.MapExecCASContext(ctx, map[string]any{})
	if iter != nil {
		if cerr := iter.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.metrics.storageError("append")
		return false, casErr("append", err)
	}
	return applied, nil
}

// seal closes h's bucket at its last version and indexes the next one,
// returning the head to append to. When another writer moved the bucket
// first, it returns the reloaded head instead.
func (s *Store) seal(ctx context.Context, stream log.StreamID, h head) (head, error) {
	if !h.Sealed {
		q := s.session.Query(cqlSeal, string(stream), h.Bucket, h.LastVersion).WithContext(ctx)
		applied, err := q.MapScanCAS(map[string]any{})
		if err != nil {
			s.metrics.storageError("seal")
			// Nothing of the client's append was written; whether the seal
			// landed is resolved by the next attempt's head read.
			s.heads.forget(stream)
			return head{}, fmt.Errorf("seal bucket %d of %s: %w: %v", h.Bucket, stream, log.ErrUnavailable, err)
		}
		if !applied {
			return s.loadHead(ctx, stream, false)
		}
		s.metrics.bucketsSealed.Inc()
	}
	next := head{Head: h.Next()}
	if err := s.index(ctx, stream, next.Bucket, next.FirstVersion); err != nil {
		return head{}, err
	}
	next.indexed = true
	return next, nil
}

// index records a bucket in the stream's index. The row is a pure function
// of the sealed predecessor, so racing writers write the same values.
func (s *Store) index(ctx context.Context, stream log.StreamID, bucket, first int64) error {
	err := s.session.Query(cqlIndexBucket, string(stream), bucket, first).WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		s.metrics.storageError("index")
	}
	return readErr("index bucket", err)
}

func result(req *log.AppendRequest, first int64, dup bool) log.AppendResult {
	r := log.AppendResult{
		Stream:       req.Stream,
		FirstVersion: first,
		LastVersion:  first + int64(len(req.Events)) - 1,
		Events:       make([]log.AppendedEvent, len(req.Events)),
		Duplicate:    dup,
	}
	for i := range req.Events {
		r.Events[i] = log.AppendedEvent{ID: req.Events[i].ID, Version: first + int64(i)}
	}
	return r
}
