// Package cassandratest gives tests a real Cassandra store (the shard-log
// store, shardstore) in a keyspace of their own: created from the embedded schema, dropped when the test ends.
// The node is found at EVENTLOG_TEST_CASSANDRA_HOSTS (default 127.0.0.1);
// start it with scripts/cassandra up.
package cassandratest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// Hosts are the contact points tests use.
func Hosts() []string {
	if h := os.Getenv("EVENTLOG_TEST_CASSANDRA_HOSTS"); h != "" {
		return strings.Split(h, ",")
	}
	return []string{"127.0.0.1"}
}

// Options returns store options for a fresh, not yet created keyspace.
func Options(tb testing.TB) cassandra.Options {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	o := cassandra.DefaultOptions()
	o.Hosts = Hosts()
	o.Keyspace = "t_" + hex.EncodeToString(b[:])
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return o
}

// NewKeyspace migrates a fresh keyspace (after mod adjusts the options;
// 4 shards unless mod says otherwise) and drops it when the test ends. For
// tests that start whole servers on it.
func NewKeyspace(tb testing.TB, mod func(*cassandra.Options)) cassandra.Options {
	tb.Helper()
	o := Options(tb)
	o.Shards = 4
	if mod != nil {
		mod(&o)
	}
	// A schema change can fail while the nodes of a cluster disagree on
	// the schema ("Unknown CF …" after a node restarted): try again, as
	// Migrate does (cassandra.Migrate resumes where it stopped).
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			tb.Logf("migrate %s: %v; again in 5 s", o.Keyspace, err)
			time.Sleep(5 * time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = cassandra.Migrate(ctx, o)
		cancel()
		if err == nil {
			tb.Cleanup(func() { Drop(tb, o) })
			return o
		}
	}
	Drop(tb, o)
	tb.Fatalf("migrate %s (is Cassandra up? scripts/cassandra up): %v", o.Keyspace, err)
	return o
}

// NewStore migrates a fresh keyspace (after mod adjusts the options; 4
// shards unless mod says otherwise) and opens a shard store on it, with
// the server's 5 s shard lease (a shorter one lapses on a loaded test
// machine, and the shard has no owner until it is claimed again). The
// keyspace is dropped when the test ends.
func NewStore(tb testing.TB, mod func(*shardstore.Options)) (*shardstore.Store, shardstore.Options) {
	tb.Helper()
	o := shardstore.Options{Cassandra: Options(tb), LeaseTTL: 5 * time.Second}
	o.Cassandra.Shards = 4
	if mod != nil {
		mod(&o)
	}
	o.Cassandra = NewKeyspace(tb, func(co *cassandra.Options) { *co = o.Cassandra })
	return Reopen(tb, o), o
}

// Reopen opens another shard store on o's keyspace: its own session,
// heads and caches, as a second server instance would have. The stores a
// test binary opens forward appends and flushes to each other in-process
// (as over HTTP: the events are copied), so any of them takes any request;
// o.Forward and o.FlushRemote, if set, are kept.
func Reopen(tb testing.TB, o shardstore.Options) *shardstore.Store {
	tb.Helper()
	if o.Forward == nil {
		o.Forward = forward
	}
	if o.FlushRemote == nil {
		o.FlushRemote = flushRemote
	}
	o.Address = fmt.Sprintf("in-process-%d", instances.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, o)
	if err != nil {
		tb.Fatalf("open %s: %v", o.Cassandra.Keyspace, err)
	}
	peers.Store(o.Address, s)
	tb.Cleanup(func() {
		peers.Delete(o.Address)
		s.Close()
	})
	return s
}

var (
	instances atomic.Int64
	peers     sync.Map // address -> *shardstore.Store
)

// forward delivers an append to the in-process store at addr, as the
// HTTP hop would (a copy of the events).
func forward(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
	p, ok := peers.Load(addr)
	if !ok {
		return log.AppendResult{}, fmt.Errorf("peer %s: %w", addr, log.ErrNotOwner)
	}
	evs := make([]log.ProposedEvent, len(req.Events))
	for i, e := range req.Events {
		e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
		evs[i] = e
	}
	req.Events = evs
	return p.(*shardstore.Store).AppendLocal(ctx, req)
}

func flushRemote(ctx context.Context, addr string, stream log.StreamID) error {
	p, ok := peers.Load(addr)
	if !ok {
		return fmt.Errorf("peer %s: %w", addr, log.ErrNotOwner)
	}
	return p.(*shardstore.Store).FlushLocal(ctx, stream)
}

// Session opens a raw session on o's keyspace, for tests that inspect or
// tamper with rows directly.
func Session(tb testing.TB, o cassandra.Options) *gocql.Session {
	tb.Helper()
	c := gocql.NewCluster(o.Hosts...)
	c.Keyspace = o.Keyspace
	c.Consistency = gocql.Quorum
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		tb.Fatalf("session: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Drop removes o's keyspace.
func Drop(tb testing.TB, o cassandra.Options) {
	c := gocql.NewCluster(o.Hosts...)
	c.Timeout = time.Minute
	s, err := c.CreateSession()
	if err != nil {
		tb.Logf("drop keyspace %s: %v", o.Keyspace, err)
		return
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + o.Keyspace).Exec(); err != nil {
		tb.Logf("drop keyspace %s: %v", o.Keyspace, err)
	}
}

// ddl bounds the schema changes in flight from one test binary's
// Migrate and DropBounded: a few overlap well, more make a loaded node
// time them out.
var ddl = make(chan struct{}, 2)

// Migrate creates o's keyspace (tests that run many keyspaces side by
// side, such as the conformance suites). A schema change that timed out is
// retried (cassandra.Migrate resumes where it stopped); on failure the
// keyspace is dropped.
func Migrate(tb testing.TB, o cassandra.Options) (cassandra.Options, error) {
	ddl <- struct{}{}
	defer func() { <-ddl }()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err = cassandra.Migrate(ctx, o)
		cancel()
		if err == nil {
			return o, nil
		}
		time.Sleep(5 * time.Second)
	}
	Drop(tb, o)
	return o, fmt.Errorf("migrate %s: %w", o.Keyspace, err)
}

// DropBounded is Drop within Migrate's bound on schema changes in flight.
func DropBounded(tb testing.TB, o cassandra.Options) {
	ddl <- struct{}{}
	defer func() { <-ddl }()
	Drop(tb, o)
}
