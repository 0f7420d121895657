package feeds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// newKeyspace migrates a fresh keyspace (dropped after the test).
func newKeyspace(t *testing.T, shards int, segmentRows int64) cassandra.Options {
	t.Helper()
	o := cassandratest.Options(t)
	o.Shards, o.SegmentRows = shards, segmentRows
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandra.Migrate(ctx, o); err != nil {
		t.Fatalf("migrate %s (is Cassandra up?): %v", o.Keyspace, err)
	}
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	return o
}

// openStore opens a writer on the keyspace; it owns every shard.
func openStore(t *testing.T, o cassandra.Options) *shardstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No idle floors (TestIdleFloor has them): the tests here expect
	// complete_up_to exactly at the last commits.
	s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: 2 * time.Second, FloorEvery: time.Hour})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// newSession opens a session on the keyspace (closed after the test) and
// returns it with its serial consistency.
func newSession(t *testing.T, o cassandra.Options) (*gocql.Session, gocql.Consistency) {
	t.Helper()
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(session.Close)
	return session, cluster.SerialConsistency
}

// newReader opens a feed reader on its own session.
func newReader(t *testing.T, o cassandra.Options, fo feeds.Options) *feeds.Reader {
	t.Helper()
	session, serial := newSession(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := feeds.ReadLayout(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	r, err := feeds.New(session, serial, l.Shards, l.SegmentRows, l.Secret, fo)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appendTypes appends one event per type to stream.
func appendTypes(ctx context.Context, s *shardstore.Store, stream string, exp log.ExpectedVersion, types ...string) (log.AppendResult, error) {
	return s.Append(ctx, typesRequest(stream, exp, types...))
}

// typesRequest is an append of one event per type to stream.
func typesRequest(stream string, exp log.ExpectedVersion, types ...string) log.AppendRequest {
	req := log.AppendRequest{Stream: log.StreamID(stream), Expected: exp}
	for i, typ := range types {
		req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: typ,
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":"0123456789abcdef0123456789abcdef"}`, i))})
	}
	return req
}

// mustAppend appends and fails the test on an error.
func mustAppend(t *testing.T, s *shardstore.Store, stream string, types ...string) log.AppendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := appendTypes(ctx, s, stream, log.Any, types...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

// streamOnShard returns the first stream id prefix-N that lives on shard.
func streamOnShard(prefix string, shard, shards int) string {
	for i := 0; ; i++ {
		s := fmt.Sprintf("%s-%d", prefix, i)
		if partition.ShardOf(s, shards) == shard {
			return s
		}
	}
}

// read reads one page and checks what every page must satisfy.
func read(t *testing.T, r *feeds.Reader, req feeds.Request) feeds.Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := r.Read(ctx, req)
	if err != nil {
		t.Fatalf("read %s after %v: %v", req.Feed, req.After, err)
	}
	if req.Limit > 0 && len(p.Events) > req.Limit {
		t.Fatalf("read %s: %d events, limit %d", req.Feed, len(p.Events), req.Limit)
	}
	if n := len(p.Events); n > 0 && !p.Events[n-1].Cursor.Equal(p.Next) {
		// Next may be past the last event only over what the feed does not
		// select: for the all feed, never.
		if req.Feed.Kind == log.FeedAll {
			t.Fatalf("read all: Next %v, last event's cursor %v", p.Next, p.Events[n-1].Cursor)
		}
	}
	return p
}

// readToEnd reads pages from req.After until one is at the end.
func readToEnd(t *testing.T, r *feeds.Reader, req feeds.Request) ([]feeds.Event, feeds.Page) {
	t.Helper()
	var out []feeds.Event
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("no end in sight")
		}
		p := read(t, r, req)
		out = append(out, p.Events...)
		if p.AtEnd {
			return out, p
		}
		req.After = p.Next
	}
}

func ids(evs []feeds.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

// appendAll sends the appends req(0), …, req(n-1) from `writers`
// goroutines (so log rows hold several), and stops the test at the first
// failure.
func appendAll(t *testing.T, s *shardstore.Store, writers, n int, req func(i int) log.AppendRequest) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := g; i < n; i += writers {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := s.Append(ctx, req(i))
				cancel()
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
