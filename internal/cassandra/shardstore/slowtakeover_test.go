package shardstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

func streamOn(shard, n int, prefix string) log.StreamID {
	for i := 0; ; i++ {
		if s := fmt.Sprintf("%s-%d", prefix, i); partition.ShardOf(s, n) == shard {
			return log.StreamID(s)
		}
	}
}

// TestSlowTakeoverKeepsLeasesAndReads: a takeover ran inside the
// ownership tick, so while one shard's takeover was slow (a long catch-up)
// the tick renewed no lease of the instance, neither its other shards'
// nor the claimed one's: to the other instances they looked abandoned.
// Their flushes found their leases stale and refused every read until the
// tick ended (a flush now renews a stale lease itself, from a helper's
// review), and the leases showed the rest. Takeovers now run beside the
// tick, which renews the leases of the shards being taken too.
func TestSlowTakeoverKeepsLeasesAndReads(t *testing.T) {
	o := newKeyspace(t, 2) // 50 records per segment
	var paused atomic.Bool
	b := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load})
	defer b.Close()
	ctx := context.Background()
	s0, s1 := streamOn(0, 2, "slowtake"), streamOn(1, 2, "slowtake")
	for i := 0; i < 50; i++ { // segment 0 full: the next owner opens segment 1
		for _, st := range []log.StreamID{s0, s1} {
			if _, err := appendN(ctx, b, string(st), log.Any, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	paused.Store(true)
	var slept, woke atomic.Bool
	as := open(t, shardstore.Options{Cassandra: o,
		LogFault: func(op string, shard int, err error) error {
			if op == "open" && shard == 1 && slept.CompareAndSwap(false, true) {
				time.Sleep(12 * time.Second) // a long catch-up, say
				woke.Store(true)
			}
			return err
		}})
	defer as.Close()
	for deadline := time.Now().Add(20 * time.Second); !slept.Load(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shard 1's takeover did not begin: owned %v", as.Owned())
		}
	}
	// Shard 0 is claimed and taken while shard 1 catches up (in the tick,
	// it waited for the catch-up when shard 1's turn came first).
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(as.Owned(), 0); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || woke.Load() {
			t.Fatalf("shard 0 not taken during shard 1's takeover: owned %v", as.Owned())
		}
	}
	db := cassandratest.Session(t, o)
	leases := func() map[int]time.Time {
		m := map[int]time.Time{}
		iter := db.Query(`SELECT shard, lease_until FROM shards`).Iter()
		var (
			id    int
			until time.Time
		)
		for iter.Scan(&id, &until) {
			m[id] = until
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	time.Sleep(time.Second)
	before := leases()
	time.Sleep(3 * time.Second) // twelve ticks of a 1 s lease
	after := leases()
	if woke.Load() {
		t.Fatal("the catch-up ended before the leases were compared: the test proves nothing")
	}
	for id := range 2 {
		if !after[id].After(before[id]) {
			t.Errorf("shard %d: lease until %s, %s before: not renewed during shard 1's takeover", id, after[id].Format(time.StampMilli), before[id].Format(time.StampMilli))
		}
	}

	start := time.Now()
	_, err := as.VersionAt(ctx, s0, time.Now())
	t.Logf("owned %v; read of shard 0 during shard 1's takeover: %v after %s", as.Owned(), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("a read of a shard no live instance but this one could own failed: %v", err)
	}
	for deadline := time.Now().Add(20 * time.Second); len(as.Owned()) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shard 1 not taken after its slow catch-up: owned %v", as.Owned())
		}
	}
	if _, err := appendN(ctx, as, string(s1), log.Any, 1); err != nil {
		t.Fatalf("append to shard 1 after its takeover: %v", err)
	}
}
