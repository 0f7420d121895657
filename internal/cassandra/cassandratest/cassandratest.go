// Package cassandratest gives tests a real Cassandra keyspace of their
// own: created from the embedded schema, dropped when the test ends
// (shardstore/shardstoretest opens a store on one).
// The node is found at EVENTLOG_TEST_CASSANDRA_HOSTS (default 127.0.0.1);
// start it with scripts/cassandra up.
package cassandratest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
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

// Drop removes o's keyspace. On a cluster its tables go first, one
// schema change each, then the keyspace: a node applying DROP KEYSPACE
// drops the tables one after another while it still holds their
// definitions, so a write that lands meanwhile on a table it has just
// dropped (a hint replayed to a node a fault test paused or killed)
// leaves the next table's commit log flush asking for a table it no
// longer has. The node then fails the change ("Unknown CF …" in
// Cassandra 5.0.9's ColumnFamilyStore.onTableDropped), stays on a
// schema of its own, and fails every DROP KEYSPACE after it until it
// restarts: every later migration of the cluster waits for schema
// agreement in vain (CI's cluster job, 2026-12-07). A DROP TABLE is a
// schema change of one table, whose definition is gone once it is
// applied, so such a write is only marked clean.
func Drop(tb testing.TB, o cassandra.Options) {
	c := gocql.NewCluster(o.Hosts...)
	c.Timeout = time.Minute
	s, err := c.CreateSession()
	if err != nil {
		tb.Logf("drop keyspace %s: %v", o.Keyspace, err)
		return
	}
	defer s.Close()
	if len(s.GetHosts()) > 1 {
		iter := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, o.Keyspace).Iter()
		var (
			table  string
			tables []string
		)
		for iter.Scan(&table) {
			tables = append(tables, table)
		}
		if err := iter.Close(); err != nil {
			tb.Logf("drop keyspace %s: list its tables: %v", o.Keyspace, err)
		}
		for _, table := range tables {
			if err := s.Query("DROP TABLE IF EXISTS " + o.Keyspace + "." + table).Exec(); err != nil {
				tb.Logf("drop table %s.%s: %v", o.Keyspace, table, err)
			}
		}
	}
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
