package sequencer

import (
	"context"
	"testing"
	"time"
)

// TestDrainWaitsForTheBatchInFlight: a batch taken from the queue and not
// yet decided keeps a drain from stopping the shard. Without it the queue
// looks empty and committed still equal to filled, the drain stops the
// shard, and the filler, seeing it lost, never writes the batch the
// commit then acknowledges (a review's finding; the next owner's
// catch-up wrote it, but a release that failed too left its readers
// waiting a lease TTL).
func TestDrainWaitsForTheBatchInFlight(t *testing.T) {
	s := &Sequencer{cfg: Config{HeadCache: 16, IDBudget: 16, Shards: 1}}
	sh := newShard(s, 0, 1)
	sh.committing = true // collect took a batch; commitBatch is running
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sh.drain(context.Background())
	}()
	select {
	case <-sh.lost:
		t.Fatal("the drain stopped the shard with a batch in flight")
	case <-time.After(100 * time.Millisecond):
	}
	// The batch commits (seq 1) and is filled.
	sh.mu.Lock()
	sh.committing = false
	sh.mu.Unlock()
	sh.committed.Store(1)
	sh.filled.Store(1)
	select {
	case <-sh.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the drain did not stop the shard once its batch was filled")
	}
	close(sh.done) // its goroutines, which this test never started, end
	<-drained
}
