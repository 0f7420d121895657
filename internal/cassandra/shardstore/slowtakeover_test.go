package shardstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

// TestSlowTakeoverKeepsReads: a takeover runs inside the ownership tick,
// so while one shard's takeover is slow (a long catch-up) no shard of the
// instance is renewed by the tick, and its other shards' flushes found
// their leases stale and refused every read until the tick ended, though
// no other live instance could claim them. A flush that finds its lease
// stale now renews it itself (from a helper's review).
func TestSlowTakeoverKeepsReads(t *testing.T) {
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
	var a atomic.Pointer[shardstore.Store]
	var slept atomic.Bool
	var sleeping atomic.Int64
	as := open(t, shardstore.Options{Cassandra: o,
		LogFault: func(op string, shard int, err error) error {
			if op == "open" && a.Load() != nil && len(a.Load().Owned()) == 1 && slept.CompareAndSwap(false, true) {
				sleeping.Store(int64(shard))
				time.Sleep(15 * time.Second) // a long catch-up, say
			}
			return err
		}})
	a.Store(as)
	defer as.Close()
	for deadline := time.Now().Add(20 * time.Second); !slept.Load(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Skipf("shard 1 was not taken after shard 0: owned %v", as.Owned())
		}
	}
	time.Sleep(time.Second)
	start := time.Now()
	other := s0
	if sleeping.Load() == 0 {
		other = s1
	}
	_, err := as.VersionAt(ctx, other, time.Now())
	t.Logf("owned %v; read of shard 0 during shard 1's takeover: %v after %s", as.Owned(), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("a read of a shard no live instance but this one could own failed: %v", err)
	}
}
