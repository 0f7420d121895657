package cassandra

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/snapshots"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/snapshot"
)

const (
	// schema/schema.cql: events. Appends to a created bucket are guarded by
	// its head; the first append to a bucket requires it to be empty. Both
	// also require the fence they read (null until a repairer sets one).
	cqlAppendHead = `UPDATE events SET last_version = ?, last_time = ? WHERE stream = ? AND bucket = ? IF last_version = ? AND sealed = false AND fence = ?`
	cqlOpenBucket = `UPDATE events SET first_version = ?, last_version = ?, last_time = ?, opened_at = ?, sealed = false WHERE stream = ? AND bucket = ? IF last_version = null AND fence = ?`
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
	o         Options
	session   *gocql.Session
	serial    gocql.Consistency
	policy    partition.Policy
	heads     *headCache
	queues    *queues
	watchers  log.Watchers
	feeds     *feeds
	groups    *groups
	codec     *snapshot.Codec
	snapshots *snapshots.Store
	metrics   *metrics
	logger    *slog.Logger
	// afterBatch, if set, is told how many appends each applied batch
	// committed (tests).
	afterBatch func(appends int)
	// groupFault, if set, decides for each conditional write on a group
	// partition whether it is sent and whether its answer arrives (tests
	// of unknown outcomes).
	groupFault func(op string) (send, answer bool)
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
		queues:  &queues{m: make(map[log.StreamID]*streamQueue)},
		logger:  o.Logger,
		metrics: newMetrics(o.Registerer),
	}
	if s.codec, err = snapshot.NewCodec(o.Limits.MaxSnapshotBytes); err != nil {
		session.Close()
		return nil, err
	}
	s.snapshots = snapshots.New(session, s.codec, o.Limits.MaxSnapshotBytes, o.Now, o.Logger)
	if err := s.checkKeyspace(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.openFeeds(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.openGroups()
	return s, nil
}

// Close stops the feed maintainer and the group lag refresher, finishes
// queued feed writes and releases the session.
func (s *Store) Close() {
	s.closeGroups()
	s.closeFeeds()
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

// Append implements log.Store. Concurrent appends to one stream on this
// instance are committed together (see commit.go).
func (s *Store) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	// Validate fills in ids and compacts JSON: work on our own copy, never
	// on the caller's events.
	req.Events = slices.Clone(req.Events)
	if err := req.Validate(s.o.Limits); err != nil {
		return log.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", req.Stream, log.ErrUnavailable, err)
	}
	p := newPending(&req)
	if !s.enqueue(p) {
		return log.AppendResult{}, fmt.Errorf("append to %s: %w: too many appends waiting for this stream", req.Stream, log.ErrUnavailable)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// A queued append can be withdrawn; one being written waits for
		// its outcome (each round is bounded by 3 × the query timeout),
		// unless it is put back in the queue, where it can be withdrawn.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if s.withdraw(p) {
				return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v before it was sent", req.Stream, log.ErrUnavailable, ctx.Err())
			}
			select {
			case <-p.done:
				return p.res, p.err
			case <-tick.C:
			}
		}
	}
	return p.res, p.err
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
