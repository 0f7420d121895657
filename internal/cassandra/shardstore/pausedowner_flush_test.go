package shardstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestFlushAtPausedOwnerMovesOn: a read on an instance that does not own
// the stream's shard asks the owner to flush first. An owner paused past
// its lease (SIGSTOP) takes that request and answers nothing, so the read
// waited for its whole deadline, though another instance took the shard
// over meanwhile and could answer. Now the flush gives up on the paused
// owner once the shards table names a newer one, and the read is served
// by the new owner, the events the paused one acknowledged included.
func TestFlushAtPausedOwnerMovesOn(t *testing.T) {
	o := newKeyspace(t, 2)
	var (
		paused atomic.Bool
		peers  shardstoretest.Peers
	)
	// The paused instance's answer to a flush: none, until the asker
	// gives up (its process stopped; the kernel took the connection).
	flushRemote := func(ctx context.Context, addr string, stream log.StreamID) error {
		if addr == "a" && paused.Load() {
			<-ctx.Done()
			return fmt.Errorf("flush at a: %w: %v", log.ErrUnavailable, ctx.Err())
		}
		return peers.FlushRemote(ctx, addr, stream)
	}
	a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, Address: "a", Forward: peers.Forward, FlushRemote: flushRemote})
	peers.Add("a", a)
	defer a.Close()
	b := open(t, shardstore.Options{Cassandra: o, Address: "b", Forward: peers.Forward, FlushRemote: flushRemote})
	peers.Add("b", b)
	defer b.Close()
	for deadline := time.Now().Add(30 * time.Second); len(a.Owned()) != 1 || len(b.Owned()) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a owns %v, b %v: want a shard each", a.Owned(), b.Owned())
		}
	}
	stream := ""
	for i := 0; stream == ""; i++ {
		if s := fmt.Sprintf("paused-%d", i); slices.Contains(a.Owned(), partition.ShardOf(s, o.Shards)) {
			stream = s
		}
	}
	ctx := context.Background()
	if _, err := appendN(ctx, a, stream, log.NoStream, 3); err != nil {
		t.Fatal(err)
	}
	paused.Store(true)
	// A generous deadline: without the fix the read waits all of it.
	rctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	var evs []log.RecordedEvent
	err := b.ReadStream(rctx, log.ReadRange{Stream: log.StreamID(stream)}, func(e *log.RecordedEvent) error {
		evs = append(evs, *e)
		return nil
	})
	if err != nil {
		t.Fatalf("read through b while the owner is paused: %v", err)
	}
	checkGapless(t, stream, evs, 3)
	if !slices.Contains(b.Owned(), partition.ShardOf(stream, o.Shards)) {
		t.Fatalf("b owns %v: the read was served before the takeover?", b.Owned())
	}
}
