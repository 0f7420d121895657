package sequencer

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestRoundPastBudget: a tail past TailBytes gives the filler the oldest
// records down to three quarters of the budget in one round, not one
// record per round (which fell behind the commits); under the budget and
// the delay it gives nothing.
func TestRoundPastBudget(t *testing.T) {
	const records, budget = 100, 10 << 10
	sh := &shard{s: &Sequencer{cfg: Config{FillDelay: time.Hour, TailBytes: budget}}, tail: newTail(), lost: make(chan struct{})}
	add := func(seq int) {
		rec := &record.Record{Appends: []record.Append{{Stream: log.StreamID(fmt.Sprintf("s-%d", seq)), FirstVersion: 1,
			Events: []record.Event{{Type: "T", Data: make([]byte, 1000)}}}}}
		sh.tail.add(int64(seq), time.Now(), time.Now(), pendingOf(int64(seq), time.Now(), rec))
	}
	for i := 1; i <= 9; i++ {
		add(i)
	}
	// Under the budget and the delay: the filler waits (until lost).
	got := make(chan map[log.StreamID][]streams.Pending, 1)
	go func() { got <- sh.nextRound() }()
	select {
	case w := <-got:
		t.Fatalf("under the budget: a round of %d streams", len(w))
	case <-time.After(100 * time.Millisecond):
	}
	close(sh.lost)
	<-got
	sh.lost = make(chan struct{})

	for i := 10; i <= records; i++ {
		add(i)
	}
	work := sh.nextRound()
	left := sh.tail.bytes
	for _, w := range work {
		for i := range w {
			left -= chunkBytes(&w[i])
		}
	}
	if left > budget*3/4 || left < budget*3/4-1100 {
		t.Fatalf("a round of %d streams leaves %d bytes, want just under %d", len(work), left, budget*3/4)
	}
	for i := 1; i <= len(work); i++ {
		if _, ok := work[log.StreamID(fmt.Sprintf("s-%d", i))]; !ok {
			t.Fatalf("the round took %d streams but not the oldest, s-%d", len(work), i)
		}
	}
}
