package shardstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupReadThroughAnotherInstance: a member that joined through an
// instance whose clock is an hour behind reads its shards through another
// instance. A read compared the lease's end, written by the instance
// behind, with the other's clock: every lease looked lapsed there, and the
// read answered an empty page (409 lease_lost for named partitions), the
// member's events undelivered for as long as it read through it.
func TestGroupReadThroughAnotherInstance(t *testing.T) {
	s1, s2 := skewedPair(t, -time.Hour)
	ctx := context.Background()
	if _, err := appendN(ctx, s1, "gr-1", log.NoStream, 3); err != nil {
		t.Fatal(err)
	}
	m := mustJoin(t, s2, "g", log.AllFeed, "a")
	if len(m.Partitions) != 2 {
		t.Fatalf("a holds %d shards, want 2", len(m.Partitions))
	}
	for _, s := range []log.GroupStore{s2, s1} {
		p, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Limit: 1000})
		if err != nil {
			t.Errorf("read: %v", err)
			continue
		}
		n := len(p.Events)
		t.Logf("%d partitions, %d events", len(p.Partitions), n)
		if len(p.Partitions) != 2 || n != 3 {
			t.Errorf("read: %d partitions, %d events; want 2 and 3", len(p.Partitions), n)
		}
	}
}
