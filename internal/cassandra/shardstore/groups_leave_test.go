package shardstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupLeaveReleaseFails: a leave whose release fails after it deleted
// the member's row must not answer what a bare outage does ("nothing was
// written"): the member is gone. A repeated leave releases the rest.
func TestGroupLeaveReleaseFails(t *testing.T) {
	o := groupKeyspace(t, 2)
	var fail atomic.Bool
	s := open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		if op == "group release" && fail.Load() {
			return gocql.ErrNoConnections
		}
		return nil
	}})
	defer s.Close()
	ctx := context.Background()
	if m := mustJoin(t, s, "g", log.AllFeed, "a"); len(m.Partitions) != 2 {
		t.Fatalf("a holds %d partitions, want 2", len(m.Partitions))
	}
	fail.Store(true)
	err := s.LeaveGroup(ctx, "g", "a")
	fail.Store(false)
	if !errors.Is(err, log.ErrLeaveIncomplete) {
		t.Fatalf("leave with its releases failing: %v, want ErrLeaveIncomplete", err)
	}
	info, err := s.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Members) != 0 {
		t.Fatalf("members %+v after the leave, want none", info.Members)
	}
	// Repeated: it releases what the first left held, and again is a no-op.
	for i := range 2 {
		if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
			t.Fatalf("leave repeated (%d): %v", i+1, err)
		}
	}
	if info, err = s.DescribeGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Owner != "" {
			t.Errorf("partition %d owned by %q after the repeated leave", p.Partition, p.Owner)
		}
	}
}
