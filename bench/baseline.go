package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// The baseline keyspace's own tables and statements. They are not the
// server's: the server commits through shard logs (schema/schema.cql). They
// are a reference journal — a row per event in a time-bucketed partition
// per stream, with the bucket's head in static columns — that the variants
// write as a single-writer journal would (plain) or with one conditional
// write per append (lwt-only). They are the per-stream layout earlier
// builds served, so baseline keyspaces made by those builds are reused as
// they are and old figures stay comparable.
const (
	cqlBaselineEvents = `CREATE TABLE IF NOT EXISTS %s.events (
  stream text,
  bucket bigint,
  version bigint,
  id uuid,
  type text,
  time timestamp,
  data blob,
  metadata blob,
  append_first bigint,
  append_last bigint,
  first_version bigint static,
  last_version bigint static,
  last_time timestamp static,
  opened_at timestamp static,
  sealed boolean static,
  fence bigint static,
  PRIMARY KEY ((stream, bucket), version)
) WITH CLUSTERING ORDER BY (version ASC)
  AND compaction = {'class': 'SizeTieredCompactionStrategy'}
  AND compression = {'class': 'LZ4Compressor', 'chunk_length_in_kb': 16}`
	cqlBaselineBuckets = `CREATE TABLE IF NOT EXISTS %s.stream_buckets (
  stream text,
  bucket bigint,
  first_version bigint,
  PRIMARY KEY ((stream), bucket)
) WITH CLUSTERING ORDER BY (bucket DESC)`
	cqlBaselineKeyspace = `CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`

	// lwt-only: the head update guarding an append to a created bucket
	// (last, time, stream, bucket, cur, fence), and the first append's
	// (first, last, time, opened_at, stream, bucket, fence).
	cqlAppendHead = `UPDATE events SET last_version = ?, last_time = ? WHERE stream = ? AND bucket = ? IF last_version = ? AND sealed = false AND fence = ?`
	cqlOpenBucket = `UPDATE events SET first_version = ?, last_version = ?, last_time = ?, opened_at = ?, sealed = false WHERE stream = ? AND bucket = ? IF last_version = null AND fence = ?`
	// One event row: (stream, bucket, version, id, type, time, data,
	// metadata, append_first, append_last).
	cqlInsert = `INSERT INTO events (stream, bucket, version, id, type, time, data, metadata, append_first, append_last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// A stream's bucket in its index: (stream, bucket, first).
	cqlIndexBucket = `INSERT INTO stream_buckets (stream, bucket, first_version) VALUES (?, ?, ?)`
	// cqlReloadHead reads bucket 0's static head after a conditional write
	// whose outcome the baseline does not know.
	cqlReloadHead = `SELECT last_version, last_time FROM events WHERE stream = ? AND bucket = 0 LIMIT 1`
)

// The baseline writes, from a raw gocql session with the server's cluster
// settings (token-aware routing, prepared statements), one of:
//
//	lwt-only: one conditional batch per append on its stream's bucket
//	          partition (the head update IF last_version = ? + one INSERT
//	          per event): what a store that serialises appends with one
//	          Paxos round each pays
//	plain:    only the event rows, one INSERT per append (several: one
//	          unconditional single-partition batch); no feeds, no Paxos:
//	          what a single-writer journal such as Pekko Persistence
//	          Cassandra writes (issue 8's reference)
//
// (Earlier builds had a `full` variant that sent the per-stream server's
// own statements; the shard-log server has no per-append statement
// sequence such a copy could describe, so it went with that path.)
//
// It keeps each stream's head in memory and lets one writer at a time
// append to a stream, so a steady writer needs no reads. Each stream stays
// in bucket 0: the baseline never seals.
type baselineLoad struct {
	cfg      *Config
	session  *gocql.Session
	variant  string
	prefix   string
	payloads []payload
	seed     int64
	heads    []baseHead
	workers  atomic.Int64 // see ingestLoad.workers
	closing  sync.Once
}

// baseHead is the baseline's view of one stream's bucket 0.
type baseHead struct {
	mu       sync.Mutex
	last     int64
	lastTime time.Time
	created  bool // the bucket has rows (first append done)
	indexed  bool // stream_buckets row written
}

// openBaseline creates (or reuses) the baseline keyspace with its own
// tables and opens a session on it.
func openBaseline(ctx context.Context, c *Config, prefix string, payloads []payload, seed int64) (*baselineLoad, error) {
	o := cassandra.DefaultOptions()
	o.Hosts = c.CassandraHosts
	o.Keyspace = c.BaselineKeyspace
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := createBaseline(ctx, o); err != nil {
		return nil, fmt.Errorf("create baseline keyspace %s (is Cassandra up? scripts/cassandra up): %w", o.Keyspace, err)
	}
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		return nil, err
	}
	cluster.NumConns = c.CQLConns
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("baseline session: %w", err)
	}
	return &baselineLoad{
		cfg: c, session: session, variant: c.Variant, prefix: prefix, payloads: payloads, seed: seed,
		heads: make([]baseHead, c.Streams),
	}, nil
}

// createBaseline creates the baseline keyspace and its tables if they do
// not exist (the keyspace name is validated by Config.Validate).
func createBaseline(ctx context.Context, o cassandra.Options) error {
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		return err
	}
	cluster.Keyspace = ""
	cluster.Timeout = max(o.Timeout, 30*time.Second) // DDL waits for agreement
	session, err := cluster.CreateSession()
	if err != nil {
		return err
	}
	defer session.Close()
	for _, ddl := range []string{cqlBaselineKeyspace, cqlBaselineEvents, cqlBaselineBuckets} {
		if err := session.Query(fmt.Sprintf(ddl, o.Keyspace)).WithContext(ctx).Exec(); err != nil {
			return err
		}
		if err := session.AwaitSchemaAgreement(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the session; calls after the first do nothing.
func (b *baselineLoad) Close() {
	b.closing.Do(b.session.Close)
}

func (b *baselineLoad) newOp(int) opFunc {
	w := newWorkDraw(b.cfg, b.seed, int(b.workers.Add(1)), b.payloads)
	ids, evs := w.ids, w.evs
	cas := map[string]any{}
	return func(ctx context.Context) outcome {
		ctx, cancel := context.WithTimeout(ctx, appendTimeout)
		defer cancel()
		s, size := w.draw()
		stream := streamName(b.prefix, s)
		h := &b.heads[s]
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := b.append(ctx, stream, h, ids, evs, cas); err != nil {
			return outcome{code: cqlCode(err), detail: err.Error()}
		}
		return outcome{events: len(ids), bytes: size}
	}
}

// errNotApplied: a conditional batch lost its condition, which cannot
// happen while the baseline is the stream's only writer.
var errNotApplied = errors.New("cas_not_applied")

func (b *baselineLoad) append(ctx context.Context, stream string, h *baseHead, ids []uuid.UUID, evs []*payload, cas map[string]any) error {
	cur := h.last
	last := cur + int64(len(evs))
	if !h.indexed {
		// A new stream's bucket 0 in its index.
		if err := b.session.Query(cqlIndexBucket, stream, int64(0), int64(1)).
			WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return err
		}
		h.indexed = true
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := now
	if at.Before(h.lastTime) {
		at = h.lastTime
	}
	batch := b.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	switch {
	case b.variant == "plain":
		// Only the event rows: what a single-writer journal writes.
	case h.created:
		batch.Query(cqlAppendHead, last, at, stream, int64(0), cur, nil)
	default:
		batch.Query(cqlOpenBucket, int64(1), last, at, now, stream, int64(0), nil)
	}
	for i, p := range evs {
		batch.Query(cqlInsert, stream, int64(0), cur+1+int64(i), [16]byte(ids[i]), p.Type, at,
			p.Data, metadataOrNil(p.Metadata), cur+1, last)
	}
	if b.variant == "plain" && len(batch.Entries) == 1 {
		e := batch.Entries[0]
		if err := b.session.Query(e.Stmt, e.Args...).WithContext(ctx).Exec(); err != nil {
			return err
		}
	} else if b.variant == "plain" {
		if err := batch.ExecContext(ctx); err != nil {
			return err
		}
	} else {
		clear(cas)
		applied, iter, err := batch.MapExecCASContext(ctx, cas)
		if iter != nil {
			if cerr := iter.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			// The head is unknown now: re-read it before the next append.
			b.reloadHead(ctx, stream, h)
			return err
		}
		if !applied {
			b.reloadHead(ctx, stream, h)
			return errNotApplied
		}
	}
	h.last, h.lastTime, h.created = last, at, true
	return nil
}

// reloadHead reads bucket 0's static head after a failed conditional
// write (a timeout may still have applied it).
func (b *baselineLoad) reloadHead(ctx context.Context, stream string, h *baseHead) {
	var last *int64
	var lastTime time.Time
	err := b.session.Query(cqlReloadHead, stream).
		WithContext(ctx).Consistency(gocql.LocalSerial).Scan(&last, &lastTime)
	if err == nil && last != nil {
		h.last, h.lastTime, h.created = *last, lastTime, true
	}
}

func metadataOrNil(m []byte) []byte {
	if len(m) == 0 {
		return nil
	}
	return m
}

// cqlCode classifies a driver error for the error table.
func cqlCode(err error) string {
	var (
		wt  *gocql.RequestErrWriteTimeout
		rt  *gocql.RequestErrReadTimeout
		un  *gocql.RequestErrUnavailable
		ovl *gocql.RequestErrOverloaded
	)
	switch {
	case errors.Is(err, errNotApplied):
		return "cas_not_applied"
	case errors.As(err, &wt):
		return "write_timeout"
	case errors.As(err, &rt):
		return "read_timeout"
	case errors.As(err, &un):
		return "unavailable"
	case errors.As(err, &ovl):
		return "overloaded"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, gocql.ErrTimeoutNoResponse):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrConnectionClosed):
		return "no_connection"
	}
	return "cql_error"
}
