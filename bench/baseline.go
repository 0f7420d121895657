package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// cqlReloadHead reads bucket 0's static head (schema/schema.cql: events)
// after a conditional write whose outcome the baseline does not know.
const cqlReloadHead = `SELECT last_version, last_time FROM events WHERE stream = ? AND bucket = 0 LIMIT 1`

// The baseline writes what the server writes for an append with client
// ids, statement for statement (internal/cassandra commit.go commitGroup:
// idempotency.go resolveStored and recordIDs, feeds.go openIntent, store.go
// write, then the feed writers), from a raw gocql session with the store's
// own cluster settings (token-aware routing, prepared statements):
//
//	full:     SELECT event_ids (id lookup), an unlogged batch of id
//	          records, the feed intent and a watermark read, the
//	          conditional batch (UPDATE ... IF last_version = ? AND sealed
//	          = false AND fence = null, or IF last_version = null AND fence
//	          = null for a bucket's first append, + one INSERT per event),
//	          then asynchronously the feed rows and the intent's done mark
//	          (basefeeds.go)
//	lwt-only: the conditional batch alone
//	plain:    only the event rows, one INSERT per append (several: one
//	          unconditional single-partition batch); no feeds, no Paxos:
//	          what a single-writer journal such as Pekko Persistence
//	          Cassandra writes (issue 8's reference)
//
// It keeps each stream's head in memory and lets one writer at a time
// append to a stream, as the server's per-stream lock and head cache do,
// so a steady writer needs no reads. Each stream stays in bucket 0: the
// baseline never seals (a run writes far fewer than 50,000 events per
// stream in practice, and sealing is one extra conditional write per
// bucket, negligible at the cap).
type baselineLoad struct {
	cfg      *Config
	session  *gocql.Session
	variant  string
	prefix   string
	payloads []payload
	seed     int64
	ttl      int
	heads    []baseHead
	workers  atomic.Int64 // see ingestLoad.workers
	feeds    *baseFeeds   // nil for lwt-only
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

// openBaseline creates (or reuses) the baseline keyspace with the server's
// schema and opens a session on it.
func openBaseline(ctx context.Context, c *Config, prefix string, payloads []payload, seed int64) (*baselineLoad, error) {
	o := cassandra.DefaultOptions()
	o.Hosts = c.CassandraHosts
	o.Keyspace = c.BaselineKeyspace
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := cassandra.Migrate(ctx, o); err != nil {
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
	b := &baselineLoad{
		cfg: c, session: session, variant: c.Variant, prefix: prefix, payloads: payloads, seed: seed,
		ttl:   int(o.IdempotencyWindow.Seconds()),
		heads: make([]baseHead, c.Streams),
	}
	if c.Variant == "full" {
		if b.feeds, err = openBaseFeeds(ctx, session, o); err != nil {
			session.Close()
			return nil, err
		}
	}
	return b, nil
}

// Close finishes the queued feed writes and closes the session; calls
// after the first do nothing.
func (b *baselineLoad) Close() {
	b.closing.Do(func() {
		if b.feeds != nil {
			b.feeds.close()
		}
		b.session.Close()
	})
}

// addFeedErrors counts the feed jobs that failed during ph (after their
// appends were answered) as feed_write errors.
func (b *baselineLoad) addFeedErrors(ph *Phase) {
	if b.feeds == nil {
		return
	}
	n, first := b.feeds.takeFailures()
	if n == 0 {
		return
	}
	if ph.Errors == nil {
		ph.Errors = map[string]int64{}
	}
	ph.Errors["feed_write"] += n
	if ph.ErrorText == nil {
		ph.ErrorText = map[string]string{}
	}
	ph.ErrorText["feed_write"] = first
}

// findIDsStmt is the id lookup for n ids, built as the store builds it.
func findIDsStmt(n int) string {
	return cassandra.Statements.FindIDsPrefix + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
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
	full := b.variant == "full"
	cur := h.last
	last := cur + int64(len(evs))
	if full {
		if err := b.lookupIDs(ctx, stream, ids); err != nil {
			return err
		}
	}
	if !h.indexed {
		// As the server does for a new stream's bucket 0.
		if err := b.session.Query(cassandra.Statements.IndexBucket, stream, int64(0), int64(1)).
			WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return err
		}
		h.indexed = true
	}
	if full {
		rec := b.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		for pos := range ids {
			rec.Entries = append(rec.Entries, gocql.BatchEntry{Stmt: cassandra.Statements.RecordID,
				Args: []any{stream, int64(0), [16]byte(ids[pos]), cur, pos, b.ttl}, Idempotent: true})
		}
		if err := rec.ExecContext(ctx); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := now
	if at.Before(h.lastTime) {
		at = h.lastTime
	}
	var in *baseIntent
	if full {
		var err error
		if in, err = b.feeds.openIntent(ctx, stream, cur, len(ids), ids[0], at); err != nil {
			return err
		}
		at = in.at
	}
	batch := b.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	switch {
	case b.variant == "plain":
		// Only the event rows: what a single-writer journal writes.
	case h.created:
		// fence null: no repairer ever fences the baseline's buckets.
		batch.Query(cassandra.Statements.AppendHead, last, at, stream, int64(0), cur, nil)
	default:
		batch.Query(cassandra.Statements.OpenBucket, int64(1), last, at, now, stream, int64(0), nil)
	}
	for i, p := range evs {
		batch.Query(cassandra.Statements.Insert, stream, int64(0), cur+1+int64(i), [16]byte(ids[i]), p.Type, at,
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
			// An intent stays open for the maintainer unless the error
			// proves the batch was not applied, as on the server.
			if in != nil && cassandra.ProvenNotApplied(err) {
				b.feeds.void(in)
			}
			b.reloadHead(ctx, stream, h)
			return err
		}
		if !applied {
			if in != nil {
				b.feeds.void(in)
			}
			b.reloadHead(ctx, stream, h)
			return errNotApplied
		}
	}
	h.last, h.lastTime, h.created = last, at, true
	if b.feeds != nil {
		b.feeds.committed(in, stream, at, cur, ids, evs)
	}
	return nil
}

// lookupIDs runs the store's id lookup (current and previous bucket; for
// bucket 0 both are 0), in chunks as the store sends them.
func (b *baselineLoad) lookupIDs(ctx context.Context, stream string, ids []uuid.UUID) error {
	for start := 0; start < len(ids); start += cassandra.IDLookupChunk {
		chunk := ids[start:min(start+cassandra.IDLookupChunk, len(ids))]
		args := make([]any, 0, len(chunk)+3)
		args = append(args, stream, int64(0), int64(0))
		for _, id := range chunk {
			args = append(args, [16]byte(id))
		}
		iter := b.session.Query(findIDsStmt(len(chunk)), args...).WithContext(ctx).Idempotent(true).Iter()
		var (
			id       [16]byte
			base     int64
			position int
		)
		for iter.Scan(&id, &base, &position) {
		}
		if err := iter.Close(); err != nil {
			return err
		}
	}
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
