package shardstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// A rolling upgrade past a migration: an instance of the newer binary takes
// every shard from the older ones as soon as it is live (they forward to
// it), and once it has claimed a shard, no instance of the older binary
// claims it again, even with no newer one left: the older binary may not
// know where the newer one writes. Without the fence in the claims the
// older instance takes both shards back once the newer one is gone;
// without the assignment among the newest binaries it keeps its share
// while the newer one runs.
func TestSchemaVersionFence(t *testing.T) {
	const ttl = 2 * time.Second
	v := cassandra.LatestSchemaVersion()
	old, o := shardstoretest.NewStore(t, func(o *shardstore.Options) {
		o.Cassandra.Shards = 2
		o.LeaseTTL = ttl
		o.SchemaVersion = v
	})
	owns := func(s *shardstore.Store, n int) bool { return len(s.Owned()) == n }
	waitFor(t, "the older instance owns both shards", func() bool { return owns(old, 2) })
	ctx := context.Background()
	if _, err := appendN(ctx, old, "acct-1", log.NoStream, 3); err != nil {
		t.Fatal(err)
	}

	newer := o
	newer.SchemaVersion = v + 1
	nw := shardstoretest.Reopen(t, newer)
	waitFor(t, "the newer instance takes both shards", func() bool { return owns(nw, 2) && owns(old, 0) })
	r, err := appendN(ctx, old, "acct-1", 3, 2) // forwarded
	if err != nil || r.FirstVersion != 4 {
		t.Fatalf("append through the older instance: %+v %v", r, err)
	}
	db := cassandratest.Session(t, o.Cassandra)
	versions := func() []int {
		var out []int
		iter := db.Query(`SELECT schema_version FROM shards`).Iter()
		var sv int
		for iter.Scan(&sv) {
			out = append(out, sv)
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := versions(); !slices.Equal(got, []int{v + 1, v + 1}) {
		t.Fatalf("shards' schema versions %v, want both %d", got, v+1)
	}

	nw.Close() // releases both shards at once
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := old.Owned(); len(n) > 0 {
			t.Fatalf("the older instance claimed shards %v a newer binary had claimed", n)
		}
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = appendN(actx, old, "acct-1", 5, 1)
	cancel()
	if !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("append with no owner the older binary may follow: %v, want unavailable", err)
	}

	nw2 := shardstoretest.Reopen(t, newer)
	waitFor(t, "a newer instance claims the shards again", func() bool { return owns(nw2, 2) })
	if r, err := appendN(ctx, old, "acct-1", 5, 1); err != nil || r.FirstVersion != 6 {
		t.Fatalf("append through the older instance: %+v %v", r, err)
	}
	checkGapless(t, "acct-1", readAll(t, nw2, "acct-1"), 6)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
