package sequencer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/log"
)

// queryObserver is a gocql.QueryObserver calling a function.
type queryObserver func(gocql.ObservedQuery)

func (f queryObserver) ObserveQuery(_ context.Context, q gocql.ObservedQuery) { f(q) }

// TestOwnerWaitsShareTheRowRead: many appends waiting on one shard's owner
// (its listener refuses connections: it is stopping) read the shard's row
// together, at most once per ownerReadEvery (refreshOwner), not once each
// after each of their 50 ms waits: 500 waiting appends read it 10,000
// times a second. The reads are counted by the driver (a QueryObserver on
// the session that reads the row), the waits by the forwards they try;
// the bound holds by construction, whatever the machine's speed: reads
// are at least ownerReadEvery apart within the time the test measures.
func TestOwnerWaitsShareTheRowRead(t *testing.T) {
	o := handoverKeyspace(t, 1)
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	var reads atomic.Int64
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	cluster.QueryObserver = queryObserver(func(q gocql.ObservedQuery) {
		if q.Statement == cqlOwner && q.Attempt == 0 { // a driver's retry is the same read
			reads.Add(1)
		}
	})
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(session.Close)
	cfg.Session = session // readOwner's; nothing is committed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The row the waits read: "stopping" holds the shard for an hour.
	until := time.Now().Add(time.Hour)
	if err := session.Query(`INSERT INTO shards (shard, owner, address, epoch, lease_until, segment, schema_version) VALUES (0, 'stopping', 'stopping', 1, ?, 0, ?)`,
		until, cassandra.LatestSchemaVersion()).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int64
	cfg.Forward = func(_ context.Context, addr string, _ log.AppendRequest) (log.AppendResult, error) {
		tries.Add(1)
		return log.AppendResult{}, fmt.Errorf("forward to %s: %w: connection refused", addr, log.ErrOwnerUnreachable)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { handoverClose(s) })
	s.setOwner(owner{Shard: 0, Owner: "stopping", Address: "stopping", Epoch: 1, LeaseUntil: until, exists: true})

	const waiters = 64
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range waiters {
		stream := log.StreamID(fmt.Sprintf("waiter-%d", i)) // shard 0, the only one
		wg.Go(func() {
			req := log.AppendRequest{Stream: stream, Expected: log.Any, Events: []log.ProposedEvent{{ID: uuid.New(), Type: "Tested", Data: []byte(`{}`)}}}
			if _, err := s.Append(wctx, req); err == nil {
				t.Errorf("%s: appended, want it still waiting when the test ends it", stream)
			}
		})
	}
	// Each waiter tries, waits and reads (or finds the row just read) in
	// turn: 3 tries a waiter are 2 reads each, unshared.
	handoverWait(t, "the waiters to try 3 times each", func() bool { return tries.Load() >= 3*waiters })
	stop()
	wg.Wait()
	elapsed := time.Since(start)
	n, limit := reads.Load(), int64(elapsed/ownerReadEvery)+1
	t.Logf("%d waiters tried %d times and read the row %d times in %v", waiters, tries.Load(), n, elapsed.Round(time.Millisecond))
	if n == 0 {
		t.Fatal("no read of the shard's row observed: the observer sees nothing, or the waits read nothing")
	}
	if n > limit {
		t.Fatalf("the waits read the shard's row %d times in %v, want at most %d: one read per %v, shared", n, elapsed.Round(time.Millisecond), limit, ownerReadEvery)
	}
}
