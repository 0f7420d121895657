package shardstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
)

// TestSkewedOwnerInTheClusterView: the cluster view (GET /v1/cluster) listed a
// shard under its owner only while the lease's end, written by the
// owner's clock, was after the answering instance's clock: every shard
// of a live owner whose clock is hours behind was listed as held by no
// one, through any other instance (and one ahead would keep a lapsed
// lease listed). A shard is now listed under its owner while the owner
// is a live instance, judged by its heartbeat row's TTL.
func TestSkewedOwnerInTheClusterView(t *testing.T) {
	o := newKeyspace(t, 2)
	behind := o
	behind.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	a := open(t, shardstore.Options{Cassandra: behind, Address: "a"})
	defer a.Close()
	// b claims nothing: a reader of the view only, with the right time.
	b := open(t, shardstore.Options{Cassandra: o, Address: "b", Paused: func() bool { return true }})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got := len(a.Owned()); got != 2 {
		t.Fatalf("a owns %d shards, want both", got)
	}
	for _, s := range []*shardstore.Store{a, b} {
		c, err := s.Cluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, in := range c.Instances {
			held += len(in.Shards)
		}
		if held != 2 || len(c.Unowned) != 0 {
			t.Errorf("cluster view through %s: %d shards held, unowned %v; want both held by a", c.Self, held, c.Unowned)
		}
	}
}
