package shardstore_test

// Guarantees first proven on the per-stream store, kept on the shard
// store: a queued append past its deadline is withdrawn, never written;
// "any" appenders on two instances; the TTL of recorded ids; corrupt
// snapshots detected; the schema checks on open.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestQueuedAppendHonoursDeadline: while a shard's commit is being
// written, an append queued behind it whose deadline passes is withdrawn —
// reported unavailable and never written — while the append being written
// still gets its real outcome.
func TestQueuedAppendHonoursDeadline(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var hold atomic.Bool
	s, _ := shardstoretest.NewStore(t, func(o *shardstore.Options) {
		o.Cassandra.Shards = 1
		o.BeforeCommit = func(int) {
			if !hold.Load() {
				return
			}
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
	})
	ctx := context.Background()
	if _, err := s.Append(ctx, log.AppendRequest{Stream: "deadline-1", Expected: log.Any, Events: withIDs(events(1, "Seed"))}); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	first := withIDs(events(1, "Held"))
	firstDone := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, log.AppendRequest{Stream: "deadline-1", Expected: log.Any, Events: first})
		firstDone <- err
	}()
	<-entered // the first append's commit is being written, and held
	hold.Store(false)

	queued := withIDs(events(1, "Queued"))
	qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := s.Append(qctx, log.AppendRequest{Stream: "deadline-1", Expected: log.Any, Events: queued})
	if !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("queued append past its deadline: %v, want ErrUnavailable", err)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("the append being written: %v", err)
	}
	// A later commit does not carry the withdrawn append either.
	if _, err := s.Append(ctx, log.AppendRequest{Stream: "deadline-1", Expected: 2, Events: withIDs(events(1, "After"))}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, "deadline-1")
	checkGapless(t, "deadline-1", got, 3)
	if got[1].ID != first[0].ID {
		t.Fatalf("version 2 is %s, want the held append", got[1].Type)
	}
	for _, ev := range got {
		if ev.ID == queued[0].ID {
			t.Fatal("the withdrawn append was written")
		}
	}
}

// TestConcurrentAny: "any" appenders on two instances (one forwarding to
// the other) never lose or duplicate, and each multi-event append is
// contiguous.
func TestConcurrentAny(t *testing.T) {
	s1, o := shardstoretest.NewStore(t, nil)
	s2 := shardstoretest.Reopen(t, o)
	const writers, appends, per = 8, 20, 3
	var (
		mu     sync.Mutex
		ranges = map[int64][]uuid.UUID{}
		wg     sync.WaitGroup
	)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(s log.Store) {
			defer wg.Done()
			for i := 0; i < appends; i++ {
				evs := withIDs(events(per, "A"))
				res, err := s.Append(context.Background(), log.AppendRequest{Stream: "any-1", Expected: log.Any, Events: evs})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ranges[res.FirstVersion] = []uuid.UUID{evs[0].ID, evs[1].ID, evs[2].ID}
				mu.Unlock()
			}
		}([]log.Store{s1, s2}[w%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range []*shardstore.Store{s1, s2} {
		got := readAll(t, s, "any-1")
		checkGapless(t, "any-1", got, writers*appends*per)
		for first, ids := range ranges {
			for i, id := range ids {
				if got[first-1+int64(i)].ID != id {
					t.Fatalf("append at %d not contiguous", first)
				}
			}
		}
	}
}

// TestIdempotencyRecordsExpire: the ids recorded for "any" retries
// (stream_ids, written with the stream's events) carry the idempotency
// window as their TTL.
func TestIdempotencyRecordsExpire(t *testing.T) {
	s, o := shardstoretest.NewStore(t, func(o *shardstore.Options) { o.Cassandra.IdempotencyWindow = 2 * time.Hour })
	// Past a stream's first versions, whose ids only its chunks hold
	// (streams.LowVersions).
	for left := streams.LowVersions; left > 0; left -= 500 {
		if _, err := s.Append(context.Background(), log.AppendRequest{Stream: "ttl-1", Expected: log.Any, Events: events(min(left, 500), "Before")}); err != nil {
			t.Fatal(err)
		}
	}
	evs := withIDs(events(2, "E"))
	if _, err := s.Append(context.Background(), log.AppendRequest{Stream: "ttl-1", Expected: log.Any, Events: evs}); err != nil {
		t.Fatal(err)
	}
	readAll(t, s, "ttl-1") // a read has the owner write the stream first
	var ttl int
	err := cassandratest.Session(t, o.Cassandra).Query(`SELECT TTL(version) FROM stream_ids WHERE stream = 'ttl-1' AND bucket = 0 AND id = ?`, [16]byte(evs[1].ID)).Scan(&ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 2*3600-120 || ttl > 2*3600 {
		t.Fatalf("TTL of a recorded id is %d s, want about %d", ttl, 2*3600)
	}
}

// TestSnapshotCorruptIsDetected: a truncated, altered or emptied stored
// snapshot is refused with ErrSnapshotCorrupt, never served (S11).
func TestSnapshotCorruptIsDetected(t *testing.T) {
	s, o := shardstoretest.NewStore(t, nil)
	ctx := context.Background()
	if _, err := s.Append(ctx, log.AppendRequest{Stream: "agg-1", Expected: log.Any, Events: events(50, "E")}); err != nil {
		t.Fatal(err)
	}
	state := []byte(`{"sum":780,"count":40,"note":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`)
	if _, err := s.PutSnapshot(ctx, "agg-1", 40, state); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestSnapshot(ctx, "agg-1", 50); err != nil {
		t.Fatalf("intact snapshot: %v", err)
	}
	sess := cassandratest.Session(t, o.Cassandra)
	var blob []byte
	if err := sess.Query(`SELECT data FROM snapshots WHERE stream = 'agg-1' AND version = 40`).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), blob...)
	flipped[len(flipped)-3] ^= 0x40
	for _, bad := range [][]byte{blob[:len(blob)/2], flipped, {}} {
		if err := sess.Query(`UPDATE snapshots SET data = ? WHERE stream = 'agg-1' AND version = 40`, bad).Exec(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LatestSnapshot(ctx, "agg-1", 50); !errors.Is(err, log.ErrSnapshotCorrupt) {
			t.Fatalf("corrupt snapshot served: %v", err)
		}
	}
}

// TestSchemaChecksumMismatch: a keyspace whose applied migration differs
// from the one this binary carries is refused by Open and by Migrate.
func TestSchemaChecksumMismatch(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`).Exec(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second}); !errors.Is(err, cassandra.ErrSchemaMismatch) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open with an edited migration: %v", err)
	}
	if err := cassandra.Migrate(ctx, o); !errors.Is(err, cassandra.ErrSchemaMismatch) {
		t.Fatalf("migrate with an edited migration: %v", err)
	}
}

// TestPaxosVariantChecked: the test node runs paxos_variant v2 (as
// scripts/cassandra configures it), every node is asked for it, and the
// check passes there; the refusals of other variants are
// TestPaxosVariantRefusal's (a v1 node takes too long to start for CI).
func TestPaxosVariantChecked(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	sess := cassandratest.Session(t, o)
	var v string
	if err := sess.Query(`SELECT value FROM system_views.settings WHERE name = 'paxos_variant'`).Scan(&v); err != nil {
		t.Fatalf("read paxos_variant: %v", err)
	}
	if v != "v2" {
		t.Fatalf("test node runs paxos_variant %q, want v2 (scripts/cassandra)", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cassandra.CheckKeyspace(ctx, sess, o); err != nil {
		t.Fatalf("check on a v2 node: %v", err)
	}
}

// TestRefusesOldLayout: a keyspace of the per-stream layout of earlier
// builds (recognised by its feed outbox table) is refused by Open and by
// Migrate, with an error that says to serve a new keyspace.
func TestRefusesOldLayout(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`CREATE TABLE IF NOT EXISTS feed_outbox (shard int, period bigint, PRIMARY KEY ((shard, period)))`).Exec(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err == nil {
		s.Close()
	}
	for what, err := range map[string]error{"open": err, "migrate": cassandra.Migrate(ctx, o)} {
		if !errors.Is(err, cassandra.ErrOldLayout) || !errors.Is(err, cassandra.ErrSchemaMismatch) || !strings.Contains(err.Error(), "--migrate") {
			t.Fatalf("%s on an old-layout keyspace: %v, want ErrOldLayout saying to serve a new keyspace with --migrate", what, err)
		}
	}
}
