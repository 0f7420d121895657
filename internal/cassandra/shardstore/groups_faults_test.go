package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/groups"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupDeletedTokensRefusedOnEveryInstance: a group deleted and
// created again accepts none of the old incarnation's positions, on any
// instance. Instance two cached the old group row (its id) a moment
// before the delete on instance one; the member joins the new
// incarnation (same member id) and acknowledges, through instance two, a
// read of the old incarnation. The acknowledgement must be refused:
// applied, it moves the new incarnation's checkpoints past events it
// never delivered. (The new incarnation's epochs differ from the old's
// too: TestGroupAckRacingRecreationRefused.)
func TestGroupDeletedTokensRefusedOnEveryInstance(t *testing.T) {
	o := groupKeyspace(t, 2)
	s1 := open(t, shardstore.Options{Cassandra: o, Address: "one"})
	defer s1.Close()
	ctx := context.Background()
	for i := range 4 {
		if _, err := appendN(ctx, s1, fmt.Sprintf("inc-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	s2 := open(t, shardstore.Options{Cassandra: o, Address: "two"})
	defer s2.Close()
	feed := log.AllFeed
	m := mustJoin(t, s1, "g", feed, "a")
	if len(m.Partitions) != 2 {
		t.Fatalf("a holds %d partitions, want 2", len(m.Partitions))
	}
	old := mustRead(t, s1, "g", "a")
	if len(old.Events) != 12 {
		t.Fatalf("read %d events, want 12", len(old.Events))
	}
	// Instance two serves the group: it caches the group's row.
	if _, err := s2.GroupFeed(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := s1.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	m2 := mustJoin(t, s1, "g", feed, "a")
	if len(m2.Partitions) != 2 {
		t.Fatalf("a holds %d partitions of the new group, want 2", len(m2.Partitions))
	}
	_, err := s2.AckGroup(ctx, "g", "a", acksOf(old))
	mustInvalidPosition(t, "acknowledging the old incarnation's positions on an instance that cached it", err)
	if p := mustRead(t, s1, "g", "a"); len(p.Events) != 12 {
		t.Fatalf("the new group reads %d events, want all 12", len(p.Events))
	}
}

// TestGroupAckRacingRecreationRefused: an acknowledgement reads the
// group's row (the old incarnation's, so the old tokens pass) and only
// then the lease rows. If meanwhile the group is deleted, created again
// and the same member claims the shards anew, the lease rows must not
// carry an epoch the old incarnation used: new rows started at epoch 1,
// the old read's epoch, and the stale acknowledgement moved the new
// incarnation's checkpoints past events it never delivered.
func TestGroupAckRacingRecreationRefused(t *testing.T) {
	o := groupKeyspace(t, 2)
	s1 := open(t, shardstore.Options{Cassandra: o})
	defer s1.Close()
	ctx := context.Background()
	for i := range 4 {
		if _, err := appendN(ctx, s1, fmt.Sprintf("race-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	feed := log.AllFeed
	mustJoin(t, s1, "g", feed, "a")
	old := mustRead(t, s1, "g", "a")
	if len(old.Events) != 12 || len(old.Partitions) != 2 {
		t.Fatalf("read %d events of %d partitions, want 12 of 2", len(old.Events), len(old.Partitions))
	}
	// A second group store on a session that runs the delete, the new
	// incarnation and the member's join right after its first read of
	// the group's row, before the acknowledgement reads the leases.
	var (
		armed atomic.Bool
		race  = func() {
			if err := s1.DeleteGroup(ctx, "g"); err != nil {
				t.Error(err)
				return
			}
			secrets.Delete(t.Name() + "/g/a")
			if m := mustJoin(t, s1, "g", feed, "a"); len(m.Partitions) != 2 {
				t.Errorf("a holds %d partitions of the new group, want 2", len(m.Partitions))
			}
		}
	)
	stale := observedGroups(t, o, func(q gocql.ObservedQuery) {
		if strings.HasPrefix(q.Statement, "SELECT id, feed, created FROM shard_groups") && armed.CompareAndSwap(true, false) {
			race()
		}
	})
	armed.Store(true)
	_, err := stale.AckGroup(ctx, "g", "a", acksOf(old))
	if armed.Load() {
		t.Fatal("the acknowledgement read no group row")
	}
	var lost *log.LeaseLostError
	if !errors.As(err, &lost) {
		t.Errorf("the old incarnation's acknowledgement racing the new one: %v, want lease lost", err)
	}
	if p := mustRead(t, s1, "g", "a"); len(p.Events) != 12 {
		t.Fatalf("the new group reads %d events, want all 12", len(p.Events))
	}
}

type queryObserver func(gocql.ObservedQuery)

func (f queryObserver) ObserveQuery(_ context.Context, q gocql.ObservedQuery) { f(q) }

// peakHeap returns how far the heap grew above its live size while f
// ran, sampled every millisecond with the collector run often, so that
// garbage adds little to what was held at once.
func peakHeap(f func()) uint64 {
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var (
		peak atomic.Uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// TestGroupReadsOfCompressibleEventsBoundMemory: events of 1 MB that
// compress to almost nothing (any writer can make them). A member's read
// with a 2 MiB page and a describe's lag count must not hold every such
// event of the log at once: the feed reader bounded its queries by the
// stored (compressed) record bytes, and the lag count read pages of up
// to 10,000 events with no byte bound, so both decompressed about 64 MB
// here (a log of 100,000 such events: 100 GB).
func TestGroupReadsOfCompressibleEventsBoundMemory(t *testing.T) {
	o := groupKeyspace(t, 1)
	o.GroupLeaseTTL = 30 * time.Second // the test holds its lease throughout
	s := open(t, shardstore.Options{Cassandra: o, Feeds: feeds.Options{ChunkBytes: 2 << 20}})
	defer s.Close()
	ctx := context.Background()
	const n = 64
	appendCompressible(t, s, "big", n)
	// Each stream read once: the fill behind the commits is done before
	// the heap is watched.
	for i := range 4 {
		if evs := readAll(t, s, fmt.Sprintf("big-%d", i)); len(evs) != n/4 {
			t.Fatalf("big-%d holds %d events, want %d", i, len(evs), n/4)
		}
	}
	mustJoin(t, s, "g", log.AllFeed, "a")
	const bound = 24 << 20
	var page log.GroupPage
	grew := peakHeap(func() {
		var err error
		page, err = s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Limit: 1000, MaxBytes: 2 << 20})
		if err != nil {
			t.Error(err)
		}
	})
	if len(page.Events) == 0 || len(page.Events) > 3 {
		t.Fatalf("read %d events, want 1 to 3 in a page of 2 MiB", len(page.Events))
	}
	t.Logf("a read of a 2 MiB page grew the heap by %d MB", grew>>20)
	if grew > bound {
		t.Errorf("a read of a 2 MiB page grew the heap by %d MB", grew>>20)
	}
	var info log.GroupInfo
	grew = peakHeap(func() {
		var err error
		if info, err = s.DescribeGroup(ctx, "g"); err != nil {
			t.Error(err)
		}
	})
	if info.Lag != n {
		t.Fatalf("lag %d, want %d", info.Lag, n)
	}
	t.Logf("describing the group grew the heap by %d MB", grew>>20)
	if grew > bound {
		t.Errorf("describing the group grew the heap by %d MB", grew>>20)
	}
}

// TestGroupDeleteFromALaggingInstance: DELETE /v1/groups/{g} answered by
// an instance whose clock is an hour behind removes the group all the
// same. The group's rows are written by conditional writes, which take
// their timestamps from Paxos ballots (Cassandra's clock); plain deletes
// carried the instance's clock, so they were older than every row they
// meant to remove and removed nothing, while answering success: a "new"
// group then went on from the old checkpoints (and an instance an hour
// ahead left tombstones that hid the next incarnation for an hour).
func TestGroupDeleteFromALaggingInstance(t *testing.T) {
	o := groupKeyspace(t, 2)
	s1 := open(t, shardstore.Options{Cassandra: o, Address: "one"})
	defer s1.Close()
	ctx := context.Background()
	for i := range 4 {
		if _, err := appendN(ctx, s1, fmt.Sprintf("lag-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	lagging := o
	lagging.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	s2 := open(t, shardstore.Options{Cassandra: lagging, Address: "two"})
	defer s2.Close()
	mustJoin(t, s1, "g", log.AllFeed, "a")
	p := mustRead(t, s1, "g", "a")
	if len(p.Events) != 12 {
		t.Fatalf("read %d events, want 12", len(p.Events))
	}
	if _, err := s1.AckGroup(ctx, "g", "a", acksOf(p)); err != nil {
		t.Fatal(err)
	}
	if err := s2.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	sess := cassandratest.Session(t, o)
	for _, table := range []string{"shard_groups", "shard_group_leases"} {
		var n int
		if err := sess.Query(`SELECT count(*) FROM ` + table + ` WHERE group_name = 'g'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the deleted group left in %s", n, table)
		}
	}
}

// TestGroupLeaseFromAnInstanceAheadLapses: a member that joined through
// an instance whose clock is an hour ahead, and then died, holds its
// shards for a lease TTL, not an hour: lease_until is that instance's
// clock plus the TTL, and another instance judged the lease by comparing
// it with its own clock, so the dead member's shard went undelivered
// until the skew had passed.
func TestGroupLeaseFromAnInstanceAheadLapses(t *testing.T) {
	s1, s2 := skewedPair(t, time.Hour)
	feed := log.AllFeed
	if m := mustJoin(t, s2, "g", feed, "a"); len(m.Partitions) != 2 {
		t.Fatalf("a holds %d shards, want 2", len(m.Partitions))
	}
	// a dies. Its expiry is Cassandra's clock plus the TTL, as every
	// instance judges it, so after a TTL b is the only member and takes
	// both shards once their leases lapse.
	waitHolds(t, s1, "g", feed, "b", 2)
}

// TestCatchUpOfCompressibleEventsBoundsMemory: a continuous read of the
// all feed (a catch-up, log.FeedPages) over events of 1 MB that compress
// to almost nothing reads its ranges ahead by the records' decoded bytes:
// sized by their stored bytes, its four ranges in flight decoded every
// such event of the log at once.
func TestCatchUpOfCompressibleEventsBoundsMemory(t *testing.T) {
	o := newKeyspace(t, 1)
	// Ranges of at most 8 rows (PageSize): a read ahead starts once 16
	// rows are known past the first query's.
	s := open(t, shardstore.Options{Cassandra: o, Feeds: feeds.Options{ChunkBytes: 2 << 20, PageSize: 8}})
	defer s.Close()
	ctx := context.Background()
	const n = 64
	appendCompressible(t, s, "huge", n)
	pages, err := s.FeedPages(ctx, log.FeedRead{Feed: log.AllFeed})
	if err != nil {
		t.Fatal(err)
	}
	defer pages.Close()
	got := 0
	grew := peakHeap(func() {
		for got < n {
			p, err := pages.Next(1000, 2<<20)
			if err != nil {
				t.Error(err)
				return
			}
			got += len(p.Events)
			if p.AtEnd && len(p.Events) == 0 {
				return
			}
		}
	})
	if got != n {
		t.Fatalf("read %d events, want %d", got, n)
	}
	t.Logf("a catch-up read in pages of 2 MiB grew the heap by %d MB", grew>>20)
	if grew > 16<<20 { // 30 MB when its ranges were sized by stored bytes
		t.Errorf("a catch-up read in pages of 2 MiB grew the heap by %d MB", grew>>20)
	}
}

// TestGroupLeaseFromAnInstanceBehindHolds: a member heartbeating through
// an instance whose clock is an hour behind keeps the shards it is
// granted: another instance must not take them while it renews them.
// lease_until is the writing instance's clock plus the TTL, so compared
// with another instance's clock such a lease had always lapsed, and the
// other member was granted the same shards at once: both handled them.
func TestGroupLeaseFromAnInstanceBehindHolds(t *testing.T) {
	s1, s2 := skewedPair(t, -time.Hour)
	feed := log.AllFeed
	if m := mustJoin(t, s2, "g", feed, "a"); len(m.Partitions) != 2 {
		t.Fatalf("a holds %d shards, want 2", len(m.Partitions))
	}
	// a and b heartbeat in turn for three lease TTLs, a through the
	// instance behind, b through the other. A shard b is granted must not
	// be one a was granted by its last join (a lease it renewed).
	held := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		a := mustJoin(t, s2, "g", feed, "a")
		b := mustJoin(t, s1, "g", feed, "b")
		for _, lb := range b.Partitions {
			for _, la := range a.Partitions {
				if la.Partition == lb.Partition {
					t.Fatalf("shard %d granted to b (epoch %d) while a renews it (epoch %d)", lb.Partition, lb.Epoch, la.Epoch)
				}
			}
		}
		held = len(a.Partitions) + len(b.Partitions)
	}
	// The shards are split by then: a gave up (did not renew) the one
	// assigned to b, which b took once it had lapsed.
	if held != 2 {
		t.Errorf("a and b hold %d shards together at the end, want 2", held)
	}
}

// TestGroupMemberLeavesAfterAHeartbeatFromAnInstanceAhead: a member that
// heartbeated through an instance whose clock is an hour ahead, then left
// through another, is gone: its id can join again at once, as a new
// member. Its row's cells were written with the instance's clock (an hour
// ahead), so the leave's delete, stamped with the other's, removed
// nothing, and the id was refused (its secret no longer matched) for the
// hour. (Here the instance's clock is the store's; the driver stamps a
// plain write with the host's, which a test cannot move:
// groups.TestGroupRowsWrittenOnlyConditionally catches such a write.)
func TestGroupMemberLeavesAfterAHeartbeatFromAnInstanceAhead(t *testing.T) {
	s1, s2 := skewedPair(t, time.Hour)
	ctx := context.Background()
	feed := log.AllFeed
	m, err := s1.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a"})
	if err != nil || m.Secret == "" {
		t.Fatalf("join: %v (secret %q)", err, m.Secret)
	}
	if _, err := s2.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a", Secret: m.Secret}); err != nil {
		t.Fatalf("heartbeat through the instance ahead: %v", err)
	}
	if err := s1.LeaveGroup(ctx, "g", "a"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	again, err := s1.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "a"})
	if err != nil || again.Secret == "" {
		t.Fatalf("a new member a after the leave: %v (secret %q)", err, again.Secret)
	}
}

// appendCompressible appends n events of 1 MB that compress to a few
// bytes (any writer can make them), one an append, to streams prefix-0 to
// prefix-3.
func appendCompressible(t *testing.T, s *shardstore.Store, prefix string, n int) {
	t.Helper()
	data := `{"s":"` + strings.Repeat("x", 1_000_000) + `"}`
	for i := range n {
		_, err := s.Append(context.Background(), log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("%s-%d", prefix, i%4)), Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.New(), "Big", data)}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// skewedPair opens two instances of a new 2-shard group keyspace: s1 on
// the clock, s2 on a clock skew away from it (its store's clock; the
// driver stamps plain writes with the host's).
func skewedPair(t *testing.T, skew time.Duration) (s1, s2 *shardstore.Store) {
	t.Helper()
	o := groupKeyspace(t, 2)
	s1 = open(t, shardstore.Options{Cassandra: o, Address: "one"})
	t.Cleanup(s1.Close)
	skewed := o
	skewed.Now = func() time.Time { return time.Now().Add(skew) }
	s2 = open(t, shardstore.Options{Cassandra: skewed, Address: "two"})
	t.Cleanup(s2.Close)
	return s1, s2
}

// TestGroupMembersThroughSkewedInstances: members that heartbeat through
// two instances an hour apart are both live to each, and split the
// shards. Their expiry was the joining instance's clock judged by the
// reading one's: a member heartbeating through the instance behind was
// invisible to the other (a wrong member count and an uneven split), one
// through the instance ahead outlived its heartbeats there by the skew.
// Both now read Cassandra's clock.
func TestGroupMembersThroughSkewedInstances(t *testing.T) {
	ahead, behind := skewedPair(t, -time.Hour)
	ctx := context.Background()
	if _, err := behind.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: log.AllFeed, Member: "a"}); err != nil {
		t.Fatalf("join a through the instance behind: %v", err)
	}
	b, err := ahead.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: log.AllFeed, Member: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Members != 2 {
		t.Errorf("b's join through the other instance counts %d members, want 2", b.Members)
	}
	for name, s := range map[string]*shardstore.Store{"behind": behind, "ahead": ahead} {
		info, err := s.DescribeGroup(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Members) != 2 {
			t.Errorf("described through the instance %s: members %+v, want a and b", name, info.Members)
		}
	}
}

// observedGroups is a group store of keyspace o on a session of its own
// whose every query is passed to observe (after it ran): a test runs
// another store's operation there, inside this store's call.
func observedGroups(t *testing.T, o cassandra.Options, observe func(gocql.ObservedQuery)) *groups.Store {
	t.Helper()
	ctx := context.Background()
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	cluster.QueryObserver = queryObserver(observe)
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	layout, err := feeds.ReadLayout(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := feeds.New(session, cluster.SerialConsistency, layout.Shards, layout.SegmentRows, layout.Secret, feeds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := groups.New(groups.Options{Session: session, Serial: cluster.SerialConsistency, Feeds: fr, Secret: layout.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}
