package shardstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestStaleOwnerRefusesFlush: an owner that can no longer renew its lease
// (paused here; cut off from Cassandra but reachable by its peers in a
// real partition) still believes it owns the shard. Another instance
// takes the shard over and acknowledges an append it has not written to
// the stream yet (its fill held back). A reader on a third instance whose
// view of the owners is stale asks the old owner to flush: with an empty
// tail the old owner answered "done", and the reader, going on to the
// stream partitions, missed the acknowledged append. Past most of a TTL
// without a renewal, a flush is refused (unavailable), so the reader asks
// again and finds the new owner. A read on the old owner itself goes to
// the new one once the shards table names it.
func TestStaleOwnerRefusesFlush(t *testing.T) {
	o := newKeyspace(t, 1)
	var (
		paused atomic.Bool
		peers  shardstoretest.Peers
	)
	a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, Address: "a", Forward: peers.Forward, FlushRemote: peers.FlushRemote})
	peers.Add("a", a)
	defer a.Close()
	ctx := context.Background()
	const stream = "stale-1"
	if _, err := appendN(ctx, a, stream, log.NoStream, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.FlushLocal(ctx, stream); err != nil {
		t.Fatalf("the owner's flush: %v", err)
	}
	paused.Store(true)
	b := open(t, shardstore.Options{Cassandra: o, FillDelay: time.Hour, Address: "b", Forward: peers.Forward, FlushRemote: peers.FlushRemote})
	peers.Add("b", b)
	defer b.Close()
	for deadline := time.Now().Add(30 * time.Second); len(b.Owned()) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b owns %v, want the shard", b.Owned())
		}
	}
	r, err := appendN(ctx, b, stream, 1, 1)
	if err != nil || r.FirstVersion != 2 {
		t.Fatalf("append through the new owner: %+v %v", r, err)
	}
	if len(a.Owned()) != 1 {
		t.Fatalf("a owns %v: the test needs it to believe it still owns the shard", a.Owned())
	}
	err = a.FlushLocal(ctx, stream)
	if !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("the stale owner's flush, after another instance acknowledged v2 unwritten: %v, want unavailable", err)
	}
	// A read through the old owner finds the new one and sees v2.
	evs := readAll(t, a, stream)
	checkGapless(t, stream, evs, 2)
}
