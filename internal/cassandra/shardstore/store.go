package shardstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/dbclock"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/groups"
	"github.com/eventlog/eventlog/internal/cassandra/sequencer"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/snapshots"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/cassandra/topology"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/snapshot"
)

const (
	// schema/schema.cql: keyspace_config.
	cqlLayout = `SELECT shards, segment_rows, token_secret FROM keyspace_config WHERE id = 0`
)

// Options configure a Store.
type Options struct {
	// Cassandra holds the connection and keyspace settings, bucket policy,
	// limits, idempotency window, page size, clock and logger, as the
	// per-stream store takes them.
	Cassandra cassandra.Options
	// Instance names this process among the keyspace's; default a random
	// UUID. Address is where other instances forward appends for the
	// shards it owns.
	Instance string
	Address  string
	// Version is this binary's, recorded in the membership table (shown
	// by GET /v1/cluster).
	Version string
	// LeaseTTL of shard ownership. Default 5s.
	LeaseTTL time.Duration
	// SchemaVersion stands for this binary's newest migration
	// (cassandra.LatestSchemaVersion, the default) in the shard claims'
	// fence: tests set it to play a newer or an older binary.
	SchemaVersion int
	// Forward sends an append to the owner of its shard at address (the
	// HTTP layer's peer client); nil: never forward.
	Forward func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error)
	// FlushRemote asks the owner of a stream's shard at address to write
	// the stream's committed tail before a read here; nil: never ask.
	FlushRemote func(ctx context.Context, address string, stream log.StreamID) error
	// NoBlocks: sequencer.Config.NoBlocks (streams' complete blocks are
	// rewritten as one row each unless set).
	NoBlocks bool
	// NoIndex turns off the discovery indexes' writes (package catalog):
	// the listings and lookups by id then show only what was indexed
	// before. For measuring what the indexes cost.
	NoIndex bool
	// IndexSlot, if set, picks the slot of each fill request's id rows
	// (catalog.Options.Slot): tests file several commits' ids in one
	// partition.
	IndexSlot func() int
	// FloorEvery, FillDelay, TailBytes, CommitsInFlight, IDBudget and
	// IDsInHead: sequencer.Config.
	FloorEvery      time.Duration
	FillDelay       time.Duration
	TailBytes       int
	CommitsInFlight int
	IDBudget        int
	IDsInHead       int
	// LogFault, if set, replaces the driver's answers to commits and their
	// settling reads (shardlog.Log.Fault): tests of unknown outcomes.
	LogFault func(op string, shard int, err error) error
	// BeforeCommit, if set, runs before each commit's conditional write
	// (tests pause an owner there).
	BeforeCommit func(shard int)
	// GroupFault, if set, can lose a consumer group's conditional write
	// before it is sent (groups.Options.Fault): tests of unknown outcomes.
	GroupFault func(op string) error
	// Paused, if set and true, stops this instance's lease renewals and
	// claims, as if its process were stopped (tests of fencing).
	Paused func() bool
	// Feeds tunes the feed reader (page sizes, scan bounds); zero fields
	// take feeds.Options' defaults.
	Feeds feeds.Options
	// MaxGroups and MaxGroupMembers cap the consumer groups of the
	// keyspace and the live members of a group (groups.Options; 0: the
	// defaults, 1,000 and 256).
	MaxGroups       int
	MaxGroupMembers int
}

// Store is a log.Store over shard logs.
type Store struct {
	o         Options
	session   *gocql.Session
	seq       *sequencer.Sequencer
	streams   *streams.Store
	codec     *snapshot.Codec
	snapshots *snapshots.Store
	// stateHooks, nil but in tests, orders ReadState's first round.
	stateHooks *stateHooks
	// readHooks, nil but in tests, runs between ReadStream's empty read
	// and its head read.
	readHooks *readHooks
	feeds     *feeds.Reader
	groups    *groups.Store
	catalog   *catalog.Catalog
	topology  *topology.Reader
	logger    *slog.Logger
	watchers  log.Watchers
	// feedWatchers are woken by this instance's commits (feeds.go).
	feedWatchers feedWatchers
	// peerKey signs this keyspace's instance-to-instance requests.
	peerKey []byte
	closed  sync.Once
}

var (
	_ log.Store        = (*Store)(nil)
	_ log.Watcher      = (*Store)(nil)
	_ log.Catalog      = (*Store)(nil)
	_ log.ClusterStore = (*Store)(nil)
)

// Open connects, reads the keyspace's layout and starts claiming shards.
func Open(ctx context.Context, o Options) (*Store, error) {
	co := o.Cassandra
	co.EnsureDefaults()
	if err := co.Validate(); err != nil {
		return nil, err
	}
	o.Cassandra = co
	if o.SchemaVersion == 0 {
		o.SchemaVersion = cassandra.LatestSchemaVersion()
	}
	if o.Instance == "" {
		o.Instance = uuid.NewString()
	}
	cluster, err := cassandra.NewClusterConfig(co)
	if err != nil {
		return nil, err
	}
	session, err := cassandra.CreateSession(ctx, cluster, co)
	if err != nil {
		return nil, err
	}
	// The keyspace checks (layout and schema version, data centres,
	// paxos_variant v2): the conditional writes' outcomes depend on them.
	if err := cassandra.CheckKeyspace(ctx, session, co); err != nil {
		session.Close()
		return nil, err
	}
	var (
		shards int
		rows   int64
		secret []byte
	)
	if err := session.Query(cqlLayout).WithContext(ctx).Scan(&shards, &rows, &secret); err != nil {
		session.Close()
		if errors.Is(err, gocql.ErrNotFound) {
			return nil, fmt.Errorf("%w: keyspace %s has no shard layout: run server migrate", cassandra.ErrSchemaMismatch, co.Keyspace)
		}
		return nil, cql.ReadErr("read keyspace layout", err)
	}
	codec, err := snapshot.NewCodec(co.Limits.MaxSnapshotBytes)
	if err != nil {
		session.Close()
		return nil, err
	}
	fr, err := feeds.New(session, cluster.SerialConsistency, shards, rows, secret, o.Feeds)
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("open feed reader: %w", err)
	}
	gs, err := groups.New(groups.Options{Session: session, Serial: cluster.SerialConsistency, Feeds: fr, Secret: secret,
		LeaseTTL: co.GroupLeaseTTL, LeaseGrace: co.GroupLeaseGrace, LagCap: co.GroupLagCap, Now: co.Now, Registerer: co.Registerer,
		MaxGroups: o.MaxGroups, MaxMembers: o.MaxGroupMembers, Fault: o.GroupFault})
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("open consumer groups: %w", err)
	}
	s := &Store{o: o, session: session, codec: codec, feeds: fr, groups: gs, logger: co.Logger, peerKey: derivePeerKey(secret),
		streams:   streams.New(session, co.PageSize, co.IdempotencyWindow),
		snapshots: snapshots.New(session, codec, co.Limits.MaxSnapshotBytes, co.Now, co.Logger)}
	lg := shardlog.New(session, cluster.SerialConsistency)
	lg.Fault = o.LogFault
	locate := func(ctx context.Context, shard int, seq int64, id uuid.UUID) ([]catalog.Location, error) {
		return locateInLog(ctx, lg, rows, shard, seq, id)
	}
	clock := &dbclock.Clock{Session: session, Local: co.Now}
	// Where event_index (servers before 0008) may still hold ids, read
	// once. If it cannot be read, every lookup reads event_index too (the
	// zero OldIndex): more reads, the same answers.
	oldIndex, err := catalog.ReadOldIndex(ctx, session)
	if err != nil {
		co.Logger.Warn("event_index is read at every lookup by id until a restart", "err", err)
	}
	s.catalog = catalog.New(catalog.Options{Session: session, Streams: s.streams, Shards: shards, ReadEvent: s.readEvent, Locate: locate, Now: co.Now, Clock: clock.Now, LogTimes: fr.EndTimes, OldIndex: oldIndex, Slot: o.IndexSlot, Logger: co.Logger})
	s.topology = topology.New(session, co.Keyspace, shards, o.Instance)
	var index sequencer.Indexer
	if !o.NoIndex {
		index = s.catalog
	}
	forward := o.Forward
	if forward != nil {
		// An append through this instance that its shard's owner
		// committed wakes this instance's subscribers as its own commits
		// do, rather than at their next poll.
		forward = func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error) {
			res, err := o.Forward(ctx, address, req)
			if err == nil {
				s.watchers.Notify(req.Stream)
				s.feedWatchers.notify(partition.ShardOf(string(req.Stream), shards))
			}
			return res, err
		}
	}
	s.seq, err = sequencer.New(sequencer.Config{
		Session: session, Serial: cluster.SerialConsistency,
		Log: lg, Streams: s.streams,
		Shards: shards, SegmentRows: rows, Instance: o.Instance, Address: o.Address,
		LeaseTTL: o.LeaseTTL, Policy: partition.Policy{Width: co.BucketWidth, MaxEvents: co.BucketMaxEvents},
		IdempotencyWindow: co.IdempotencyWindow, Forward: forward, FlushRemote: o.FlushRemote, Version: o.Version, SchemaVersion: o.SchemaVersion,
		Index:      index,
		FloorEvery: o.FloorEvery, FillDelay: o.FillDelay, NoBlocks: o.NoBlocks, TailBytes: o.TailBytes, CommitsInFlight: o.CommitsInFlight, IDBudget: o.IDBudget, IDsInHead: o.IDsInHead,
		OnCommit: s.watchers.Notify, OnRecord: s.feedWatchers.notify,
		BeforeCommit: o.BeforeCommit, Paused: o.Paused, Now: co.Now, Logger: co.Logger, Registerer: co.Registerer,
	})
	if err == nil {
		err = s.seq.Start(ctx)
	}
	if err != nil {
		session.Close()
		return nil, err
	}
	return s, nil
}

// derivePeerKey is the key of the instances' requests to each other: from
// the keyspace's token_secret, which only they read, and apart from the
// keys the secret gives positions and group tokens.
func derivePeerKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("eventlog peer requests v1"))
	return m.Sum(nil)
}

// PeerKey implements httpapi.PeerKeyer: instances of the keyspace sign
// their forwards and flushes with it.
func (s *Store) PeerKey() []byte { return s.peerKey }

// Leave starts handing this instance's shards over to the other live
// instances while it still serves (sequencer.Sequencer.Leave): call it
// when shutdown begins, Close when the requests in flight have ended.
func (s *Store) Leave(ctx context.Context) { s.seq.Leave(ctx) }

// Close hands this instance's shards back (after committing what is
// queued) and closes the session.
func (s *Store) Close() {
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.seq.Close(ctx)
		if !cassandra.CloseSession(s.session) {
			s.logger.Warn("the Cassandra session did not close within 10 s; going on")
		}
	})
}

// Owned returns the shards this instance commits.
func (s *Store) Owned() []int { return s.seq.Owned() }

// Ready implements log.Store.
func (s *Store) Ready(ctx context.Context) error {
	var n int
	err := s.session.Query(cqlLayout).WithContext(ctx).Idempotent(true).Scan(&n, new(int64), new([]byte))
	return cql.ReadErr("ready", err)
}

// Append implements log.Store.
func (s *Store) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	if err := req.Validate(s.o.Cassandra.Limits); err != nil {
		return log.AppendResult{}, err
	}
	return s.seq.Append(ctx, req)
}

// AppendLocal commits an append forwarded by another instance: only if
// this instance owns its shard.
func (s *Store) AppendLocal(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	if err := req.Validate(s.o.Cassandra.Limits); err != nil {
		return log.AppendResult{}, err
	}
	return s.seq.AppendLocal(ctx, req)
}

// FlushLocal writes stream's committed tail if this instance owns its
// shard (the receiving end of FlushRemote).
func (s *Store) FlushLocal(ctx context.Context, stream log.StreamID) error {
	return s.seq.FlushLocal(ctx, stream)
}

// ReadStream implements log.Store. Every read first has the stream's
// owner write what it committed (appends are answered before that).
func (s *Store) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	if _, err := log.ParseStreamID(string(r.Stream)); err != nil {
		return err
	}
	if err := s.seq.Flush(ctx, r.Stream); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		read := false
		err := s.streams.Read(ctx, r, func(e *log.RecordedEvent) error {
			read = true
			return fn(e)
		})
		if err != nil || read || !r.UntilTime.IsZero() {
			return err // a time travel read has its answer: VersionAt's
		}
		if s.readHooks != nil {
			s.readHooks.afterEmpty()
		}
		// Nothing in the range. The head, read after it, tells a stream
		// without events from an empty range. Everything committed before
		// the flush was written before the read, so the range was empty
		// then; a head in the range now means appends committed since, and
		// the range is read again (a stream's chunks are written in order:
		// its head's chunk visible, so are the ones before).
		h, err := s.streams.Head(ctx, r.Stream)
		switch {
		case err != nil:
			return err
		case h.Version == 0:
			// Indexed, its first chunk not written: committed after the
			// flush, so not there when the read began.
			return fmt.Errorf("stream %s: %w", r.Stream, log.ErrStreamNotFound)
		case h.Version < max(r.From, 1):
			return nil
		case attempt == maxEmptyReads:
			return fmt.Errorf("%w: stream %s: its head is %d, yet %d reads of %d..%d found nothing", log.ErrUnavailable, r.Stream, h.Version, attempt, r.From, r.To)
		}
	}
}

type readHooks struct{ afterEmpty func() }

// maxEmptyReads bounds the reads of a range found empty while the head
// says it is not: the second sees what the head saw, unless the replicas
// read disagree (a consistency below quorum).
const maxEmptyReads = 3

// VersionAt implements log.Store.
func (s *Store) VersionAt(ctx context.Context, stream log.StreamID, t time.Time) (int64, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return 0, err
	}
	if err := s.seq.Flush(ctx, stream); err != nil {
		return 0, err
	}
	return s.streams.VersionAt(ctx, stream, t)
}

// HeadVersion implements log.Store: the head alone (Info without its
// buckets and snapshot reads).
func (s *Store) HeadVersion(ctx context.Context, stream log.StreamID) (int64, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return 0, err
	}
	if err := s.seq.Flush(ctx, stream); err != nil {
		return 0, err
	}
	h, err := s.streams.Head(ctx, stream)
	switch {
	case err != nil:
		return 0, err
	case h.Version == 0:
		return 0, log.ErrStreamNotFound
	}
	return h.Version, nil
}

// Info implements log.Store.
func (s *Store) Info(ctx context.Context, stream log.StreamID) (log.StreamInfo, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return log.StreamInfo{}, err
	}
	if err := s.seq.Flush(ctx, stream); err != nil {
		return log.StreamInfo{}, err
	}
	// Three independent reads, at once: a state load waits on them. A
	// panic of one is raised by Wait, on the caller's goroutine.
	var (
		g                fanout.Group
		bs               []streams.Bucket
		h                streams.Head
		snap             log.Snapshot
		bErr, hErr, sErr error
	)
	g.Go(func() { bs, bErr = s.streams.Buckets(ctx, stream) })
	g.Go(func() { snap, sErr = s.LatestSnapshot(ctx, stream, 0) })
	h, hErr = s.streams.Head(ctx, stream)
	g.Wait()
	switch {
	case bErr != nil:
		return log.StreamInfo{}, bErr
	case len(bs) == 0:
		return log.StreamInfo{}, log.ErrStreamNotFound
	case hErr != nil:
		return log.StreamInfo{}, hErr
	case h.Version == 0:
		return log.StreamInfo{}, log.ErrStreamNotFound
	}
	info := log.StreamInfo{
		Stream: stream, Category: stream.Category(), Version: h.Version,
		CreatedAt: bs[0].OpenedAt.UTC(), UpdatedAt: h.LastTime.UTC(),
		Buckets: len(bs), CurrentBucket: h.Bucket.Number,
	}
	if sErr == nil && snap.Version > h.Version {
		// Put meanwhile, after an append committed since the flush that
		// the head read did not see: the newest snapshot as of the head
		// read, so that no info names a snapshot past its version.
		snap, sErr = s.LatestSnapshot(ctx, stream, h.Version)
	}
	var ce *log.CorruptError
	switch {
	case sErr == nil:
		info.LatestSnapshot = snap.Version
	case errors.As(sErr, &ce) && errors.Is(sErr, log.ErrSnapshotCorrupt):
		// Left out of the info, so logged here: no answer reports it.
		s.logger.ErrorContext(ctx, "corrupt snapshot left out of stream info", append(ce.Attrs(), "error", sErr)...)
	case !errors.Is(sErr, log.ErrSnapshotNotFound) && !errors.Is(sErr, log.ErrSnapshotCorrupt):
		return log.StreamInfo{}, sErr
	}
	return info, nil
}

// PutSnapshot implements log.Store (package snapshots), against the
// stream's head as its partitions hold it.
func (s *Store) PutSnapshot(ctx context.Context, stream log.StreamID, version int64, state json.RawMessage) (log.SnapshotInfo, error) {
	return s.snapshots.Put(ctx, stream, version, state, func(ctx context.Context) (int64, error) {
		if err := s.seq.Flush(ctx, stream); err != nil {
			return 0, err
		}
		h, err := s.streams.Head(ctx, stream)
		return h.Version, err
	})
}

// LatestSnapshot implements log.Store (package snapshots).
func (s *Store) LatestSnapshot(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	return s.snapshots.Latest(ctx, stream, maxVersion)
}

// Watch implements log.Watcher: woken after each commit by this instance.
func (s *Store) Watch(stream log.StreamID) (<-chan struct{}, func()) {
	return s.watchers.Watch(stream)
}
