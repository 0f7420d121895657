package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupDeleteRepeatedAfterAFailure: a delete whose group row went but
// whose next write was lost (504 outcome_unknown, "repeating it is
// safe") is repeated. The repeat found no group row and answered 404
// group_not_found, leaving the member and lease rows behind: the next
// join's "new" group then went on from the old checkpoints (its events
// never delivered to it) and the old member's id was taken, its secret
// required.
func TestGroupDeleteRepeatedAfterAFailure(t *testing.T) {
	o := groupKeyspace(t, 2)
	var lose atomic.Bool
	s := open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		if op == "delete group member" && lose.CompareAndSwap(true, false) {
			return gocql.ErrTimeoutNoResponse
		}
		return nil
	}})
	defer s.Close()
	ctx := context.Background()
	for i := range 4 {
		if _, err := appendN(ctx, s, fmt.Sprintf("redel-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	feed := log.AllFeed
	mustJoin(t, s, "g", feed, "a")
	p := mustRead(t, s, "g", "a")
	if len(p.Events) != 12 {
		t.Fatalf("read %d events, want 12", len(p.Events))
	}
	if _, err := s.AckGroup(ctx, "g", "a", acksOf(p)); err != nil {
		t.Fatal(err)
	}
	lose.Store(true)
	if err := s.DeleteGroup(ctx, "g"); !errors.Is(err, log.ErrOutcomeUnknown) {
		t.Fatalf("delete whose member delete was lost: %v, want outcome unknown", err)
	}
	if err := s.DeleteGroup(ctx, "g"); err != nil {
		t.Fatalf("the delete repeated: %v, want it done", err)
	}
	sess := cassandratest.Session(t, o)
	for _, table := range []string{"shard_groups", "shard_group_members", "shard_group_leases"} {
		var n int
		if err := sess.Query(`SELECT count(*) FROM ` + table + ` WHERE group_name = 'g'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the deleted group left in %s", n, table)
		}
	}
	// A join creates the group anew, as "a" without a secret, from the
	// start of the logs.
	m, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a"})
	if err != nil {
		t.Fatalf("join after the delete: %v", err)
	}
	if len(m.Partitions) != 2 {
		t.Fatalf("a holds %d partitions of the new group, want 2", len(m.Partitions))
	}
	if p := mustRead(t, s, "g", "a"); len(p.Events) != 12 {
		t.Fatalf("the new group reads %d events, want all 12", len(p.Events))
	}
	// Deleting a group that is not there is still 404.
	if err := s.DeleteGroup(ctx, "none"); !errors.Is(err, log.ErrGroupNotFound) {
		t.Fatalf("delete of a missing group: %v, want group not found", err)
	}
}
