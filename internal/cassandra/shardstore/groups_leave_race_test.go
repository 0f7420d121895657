package shardstore_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupHeartbeatRacingLeave: a heartbeat in flight when its member
// leaves must not take back the partitions the leave released. The
// heartbeat renewed the member's row just before the leave deleted it;
// the leave released the member's partitions; the heartbeat then read
// the leases, found its partitions free and claimed them again, held by
// a member that had left until the lease lapsed. The heartbeat now reads
// the leases before it renews the member's row, so its writes are
// conditional on the rows as they were before the release, and fail.
func TestGroupHeartbeatRacingLeave(t *testing.T) {
	o := groupKeyspace(t, 2)
	s1 := open(t, shardstore.Options{Cassandra: o})
	defer s1.Close()
	ctx := context.Background()
	feed := log.AllFeed
	if m := mustJoin(t, s1, "g", feed, "a"); len(m.Partitions) != 2 {
		t.Fatalf("a holds %d partitions, want 2", len(m.Partitions))
	}
	secret, _ := secrets.Load(t.Name() + "/g/a")
	// A second group store, on a session that runs the leave (through
	// s1) right after the heartbeat's write of the member's row.
	var armed atomic.Bool
	hb := observedGroups(t, o, func(q gocql.ObservedQuery) {
		if strings.HasPrefix(q.Statement, "UPDATE shard_group_members") && armed.CompareAndSwap(true, false) {
			if err := s1.LeaveGroup(ctx, "g", "a"); err != nil {
				t.Error(err)
			}
		}
	})
	armed.Store(true)
	m, err := hb.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a", Secret: secret.(string)})
	if armed.Load() {
		t.Fatal("the heartbeat wrote no member row")
	}
	if err == nil && len(m.Partitions) != 0 {
		t.Errorf("the heartbeat racing the leave holds partitions %+v, want none", m.Partitions)
	}
	noOwners(t, s1, "g")
}

// TestGroupClaimRacingLeave: a partition that read free when a heartbeat
// read the leases, claimed by that heartbeat after its member's leave
// deleted the member's row and read the leases (so released nothing of
// it), must not stay held by the member that left. The claim applied (it
// is conditional on the row as read: free) and the partition was held
// until its lease lapsed. The leave runs inside the heartbeat, between
// its write of the member's row and its claim.
func TestGroupClaimRacingLeave(t *testing.T) {
	o := groupKeyspace(t, 2)
	var armed atomic.Bool
	var s *shardstore.Store
	ctx := context.Background()
	s = open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		if op == "group claim" && armed.CompareAndSwap(true, false) {
			if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
				t.Error(err)
			}
		}
		return nil
	}})
	defer s.Close()
	feed := log.AllFeed
	joinReleasingOne(t, s, feed)
	armed.Store(true)
	secret, _ := secrets.Load(t.Name() + "/g/a")
	hb, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a", Secret: secret.(string)})
	if armed.Load() {
		t.Fatal("the heartbeat claimed nothing")
	}
	if err == nil && len(hb.Partitions) != 0 {
		t.Errorf("the heartbeat racing the leave holds partitions %+v, want none", hb.Partitions)
	}
	noOwners(t, s, "g")
}

// noOwners fails t unless no partition of group is owned: its only member
// has left.
func noOwners(t *testing.T, s *shardstore.Store, group string) {
	t.Helper()
	info, err := s.DescribeGroup(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Owner != "" {
			t.Errorf("partition %d owned by %q after its member left", p.Partition, p.Owner)
		}
	}
}

// TestGroupClaimCheckSparesARejoinedMember: a join whose member left while
// it claimed a partition releases its claim (checkClaims), but by then the
// member id may have joined again, as a new member with a new secret, and
// that member's join may have found the claim in its name and renewed it:
// its answer holds the partition, with a lease that has not ended. The
// stale join's release (conditional on the owner's name and the epoch,
// which the renewal keeps) then freed the partition under the new member,
// and another member could claim it at once, while the new member still
// handled it: two members on one partition. The leave runs inside the
// stale heartbeat right before its claim, the new join right before the
// release that follows.
func TestGroupClaimCheckSparesARejoinedMember(t *testing.T) {
	o := groupKeyspace(t, 2)
	var (
		s          *shardstore.Store
		leave      atomic.Bool
		rejoin     atomic.Bool
		rejoined   log.Membership
		rejoinErr  error
		rejoinDone atomic.Bool
	)
	ctx := context.Background()
	feed := log.AllFeed
	s = open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		switch {
		case op == "group claim" && leave.CompareAndSwap(true, false):
			if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
				t.Error(err)
			}
			rejoin.Store(true) // the leave's own releases are done
		case op == "group release" && rejoin.CompareAndSwap(true, false):
			// "a" joins again: a new member, with a new secret.
			rejoined, rejoinErr = s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a"})
			rejoinDone.Store(true)
		}
		return nil
	}})
	defer s.Close()
	joinReleasingOne(t, s, feed)
	leave.Store(true)
	secret, _ := secrets.Load(t.Name() + "/g/a")
	_, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a", Secret: secret.(string)})
	if !errors.Is(err, log.ErrNotMember) {
		t.Fatalf("the stale heartbeat: %v, want ErrNotMember", err)
	}
	if !rejoinDone.Load() {
		t.Fatal("the stale heartbeat released nothing: no new join ran")
	}
	if rejoinErr != nil {
		t.Fatalf("a joining again: %v", rejoinErr)
	}
	var held *log.Lease
	for i := range rejoined.Partitions {
		if rejoined.Partitions[i].Partition == 1 {
			held = &rejoined.Partitions[i]
		}
	}
	if held == nil {
		t.Fatalf("a joined again holds %+v, want partition 1 among them", rejoined.Partitions)
	}
	info, err := s.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Partition == 1 && (p.Owner != "a" || p.Epoch != held.Epoch) {
			t.Errorf("partition 1 owned by %q at epoch %d while the new member a holds it at epoch %d until %v",
				p.Owner, p.Epoch, held.Epoch, held.Until)
		}
	}
}

// joinReleasingOne joins member a to group g of two partitions and has it
// give partition 1 up, so that a's next heartbeat claims it again.
func joinReleasingOne(t *testing.T, s *shardstore.Store, feed log.Feed) {
	t.Helper()
	m := mustJoin(t, s, "g", feed, "a")
	if len(m.Partitions) != 2 {
		t.Fatalf("a holds %d partitions, want 2", len(m.Partitions))
	}
	res, err := s.AckGroup(context.Background(), "g", "a", []log.Ack{{Partition: 1, Epoch: m.Partitions[1].Epoch, Release: true}})
	if err != nil || len(res) != 1 || !res[0].Released {
		t.Fatalf("release of partition 1: %+v %v", res, err)
	}
}
