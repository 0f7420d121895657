package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// groupTTL is the lease TTL of these tests: short, so leases lapse quickly.
const groupTTL = time.Second

// fastGroups is fastFeeds with short leases.
func fastGroups(o *cassandra.Options) {
	fastFeeds(o)
	o.GroupLeaseTTL = groupTTL
	o.GroupLeaseGrace = 100 * time.Millisecond
}

// appendSpread appends perStream events to each of streams streams of
// category cat, round robin, and returns what was acknowledged and the
// last commit time.
func appendSpread(t *testing.T, s log.Store, cat string, streams, perStream int) (map[evKey]log.AppendedEvent, time.Time) {
	t.Helper()
	acked := map[evKey]log.AppendedEvent{}
	var last time.Time
	for v := range perStream {
		for i := range streams {
			stream := fmt.Sprintf("%s-%d", cat, i)
			res := mustAppend(t, s, stream, log.ExpectedVersion(v), events(1, "Happened"))
			acked[evKey{log.StreamID(stream), res.Events[0].Version}] = res.Events[0]
			last = res.Time
		}
	}
	return acked, last
}

// waitWatermark waits until the feeds are complete up to t.
func waitWatermark(t *testing.T, s *cassandra.Store, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		wm, err := s.FeedWatermark(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !wm.Before(at) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermark %v not past %v", wm, at)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustJoin(t *testing.T, s log.GroupStore, group string, feed log.Feed, member string) log.Membership {
	t.Helper()
	m, err := s.JoinGroup(context.Background(), log.JoinRequest{Group: group, Feed: feed, Member: member})
	if err != nil {
		t.Fatalf("join %s as %s: %v", group, member, err)
	}
	return m
}

func partitionsOf(ls []log.Lease) []int {
	var out []int
	for _, l := range ls {
		out = append(out, l.Partition)
	}
	return out
}

// readBatch heartbeats, as a member does, and reads one batch of its
// partitions.
func readBatch(t *testing.T, s log.GroupStore, group string, feed log.Feed, member string, limit int) log.GroupPage {
	t.Helper()
	mustJoin(t, s, group, feed, member)
	page, err := s.ReadGroup(context.Background(), log.GroupRead{Group: group, Member: member, Limit: limit})
	if err != nil {
		t.Fatalf("read %s as %s: %v", group, member, err)
	}
	return page
}

// ackBatch acknowledges a batch: each partition read is moved to its Next.
func ackBatch(t *testing.T, s log.GroupStore, group, member string, page log.GroupPage) {
	t.Helper()
	var acks []log.Ack
	for _, pr := range page.Partitions {
		acks = append(acks, log.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
	}
	if len(acks) == 0 {
		return
	}
	if _, err := s.AckGroup(context.Background(), group, member, acks); err != nil {
		t.Fatalf("ack %s as %s: %v", group, member, err)
	}
}

// drain reads and acknowledges batches until one comes back empty.
func drain(t *testing.T, s log.GroupStore, group string, feed log.Feed, member string, limit int) []log.GroupEvent {
	t.Helper()
	var out []log.GroupEvent
	for {
		page := readBatch(t, s, group, feed, member, limit)
		if len(page.Events) == 0 {
			return out
		}
		checkPartitions(t, page)
		out = append(out, page.Events...)
		ackBatch(t, s, group, member, page)
	}
}

// checkPartitions: every event of a page is in the partition of its stream
// and the page is in feed order.
func checkPartitions(t *testing.T, page log.GroupPage) {
	t.Helper()
	for i, e := range page.Events {
		if e.Partition != log.ShardOf(e.Stream) {
			t.Fatalf("%s in partition %d, its shard is %d", e.Stream, e.Partition, log.ShardOf(e.Stream))
		}
		if i > 0 && !mustPosition(t, page.Events[i-1].Position).Less(mustPosition(t, e.Position)) {
			t.Fatalf("page out of order at %d", i)
		}
	}
}

func keysOf(evs []log.GroupEvent) map[evKey]int {
	out := map[evKey]int{}
	for _, e := range evs {
		out[evKey{e.Stream, e.Version}]++
	}
	return out
}

// waitHolds joins as member every 100ms until it holds want partitions.
func waitHolds(t *testing.T, s log.GroupStore, group string, feed log.Feed, member string, want int, within time.Duration) log.Membership {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := mustJoin(t, s, group, feed, member)
		if len(m.Partitions) == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %v after %v, want %d partitions", member, partitionsOf(m.Partitions), within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGroupsResumeAfterRestart: a member that handled events, acknowledged
// some and then stopped without a word is followed by a new member — with
// its id, at once, or with another id, once the lease has lapsed — that
// resumes right after the last acknowledgement: nothing acknowledged comes
// again, nothing is skipped, and exactly the handled but unacknowledged
// events are delivered twice (at least once).
func TestGroupsResumeAfterRestart(t *testing.T) {
	s, _ := cassandratest.NewStore(t, fastGroups)
	acked, last := appendSpread(t, s, "ord", 12, 4)
	waitWatermark(t, s, last)
	feed := log.CategoryFeed("ord")

	for _, tc := range []struct{ name, group, second string }{
		{"SameID", "g-same", "a"},
		{"OtherID", "g-other", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustJoin(t, s, tc.group, feed, "a")
			if len(m.Partitions) != log.GroupPartitions || len(m.Revoked) != 0 {
				t.Fatalf("sole member holds %v, revoked %v", partitionsOf(m.Partitions), partitionsOf(m.Revoked))
			}
			done := map[evKey]bool{}
			for range 3 {
				page := readBatch(t, s, tc.group, feed, "a", 7)
				checkPartitions(t, page)
				for _, e := range page.Events {
					done[evKey{e.Stream, e.Version}] = true
				}
				ackBatch(t, s, tc.group, "a", page)
			}
			crashed := readBatch(t, s, tc.group, feed, "a", 7) // handled, never acknowledged
			if len(done) != 21 || len(crashed.Events) != 7 {
				t.Fatalf("acknowledged %d, then read %d", len(done), len(crashed.Events))
			}
			stopped := time.Now()

			var m2 log.Membership
			if tc.second == "a" {
				m2 = mustJoin(t, s, tc.group, feed, "a")
				if len(m2.Partitions) != log.GroupPartitions {
					t.Fatalf("restarted member holds %v", partitionsOf(m2.Partitions))
				}
			} else {
				if early := mustJoin(t, s, tc.group, feed, tc.second); len(early.Partitions) != 0 {
					t.Fatalf("%s took %v while a's leases were live", tc.second, partitionsOf(early.Partitions))
				}
				m2 = waitHolds(t, s, tc.group, feed, tc.second, log.GroupPartitions, 10*time.Second)
				if waited := time.Since(stopped); waited < groupTTL {
					t.Fatalf("partitions moved after %v, before the lease TTL %v", waited, groupTTL)
				}
				for i, l := range m2.Partitions {
					if l.Epoch != m.Partitions[i].Epoch+1 {
						t.Fatalf("partition %d taken over at epoch %d, was %d", l.Partition, l.Epoch, m.Partitions[i].Epoch)
					}
				}
			}
			got := drain(t, s, tc.group, feed, tc.second, 5)
			seen := keysOf(got)
			for k, n := range seen {
				if n > 1 {
					t.Fatalf("%v delivered %d times after the restart", k, n)
				}
				if done[k] {
					t.Fatalf("%v was acknowledged before the restart, and came again", k)
				}
			}
			for _, e := range crashed.Events {
				if seen[evKey{e.Stream, e.Version}] == 0 {
					t.Fatalf("%s@%d was handled but not acknowledged, and was not delivered again", e.Stream, e.Version)
				}
			}
			if len(seen)+len(done) != len(acked) {
				t.Fatalf("%d acknowledged before + %d after the restart, want %d", len(done), len(seen), len(acked))
			}
			// Per stream, the new member resumes at the version after the
			// last acknowledged one and goes on in order.
			next := map[log.StreamID]int64{}
			for k := range done {
				next[k.stream] = max(next[k.stream], k.version)
			}
			for _, e := range got {
				if e.Version != next[e.Stream]+1 {
					t.Fatalf("%s: version %d after %d", e.Stream, e.Version, next[e.Stream])
				}
				next[e.Stream] = e.Version
			}
		})
	}
}

// TestGroupsFencing: a member that stops heartbeating loses its partitions
// once the lease lapses; the new owner holds them at a higher epoch, and
// the old member's late acknowledgement and read are refused and change
// nothing. When the old member comes back, rebalancing hands half of the
// partitions back through revoke and release; no event is lost.
func TestGroupsFencing(t *testing.T) {
	s, _ := cassandratest.NewStore(t, fastGroups)
	acked, last := appendSpread(t, s, "fen", 10, 3)
	waitWatermark(t, s, last)
	ctx := ctxT(t)
	feed := log.CategoryFeed("fen")

	mustJoin(t, s, "g", feed, "a")
	page := readBatch(t, s, "g", feed, "a", 10) // a reads, then stalls
	b := waitHolds(t, s, "g", feed, "b", log.GroupPartitions, 10*time.Second)

	// a's late ack is refused, partition by partition, and moves nothing.
	var late []log.Ack
	for _, pr := range page.Partitions {
		late = append(late, log.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
	}
	_, err := s.AckGroup(ctx, "g", "a", late)
	var lost *log.LeaseLostError
	if !errors.As(err, &lost) || len(lost.Partitions) != len(late) {
		t.Fatalf("late ack: %v", err)
	}
	info, err := s.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Checkpoint != "" || p.Owner != "b" {
			t.Fatalf("partition %d: owner %q checkpoint %v after the refused ack", p.Partition, p.Owner, p.Checkpoint)
		}
	}
	if _, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Partitions: []int{page.Partitions[0].Partition}}); !errors.Is(err, log.ErrLeaseLost) {
		t.Fatalf("read of a lost partition: %v", err)
	}
	if p, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a"}); err != nil || len(p.Events) != 0 || len(p.Partitions) != 0 {
		t.Fatalf("a member without partitions read %d events, %d partitions: %v", len(p.Events), len(p.Partitions), err)
	}

	// b consumes a little, then a comes back: b is told to give up the
	// partitions assigned to a, releases them, and a takes them at once.
	firstB := drainN(t, s, "g", feed, "b", 4, 2)
	ma := mustJoin(t, s, "g", feed, "a")
	if len(ma.Partitions) != 0 {
		t.Fatalf("a took %v while b's leases were live", partitionsOf(ma.Partitions))
	}
	mb := mustJoin(t, s, "g", feed, "b")
	wantA := log.Assign([]string{"a", "b"}, "a", log.GroupPartitions)
	if got := partitionsOf(mb.Revoked); !slices.Equal(got, wantA) {
		t.Fatalf("b must give up %v, told %v", wantA, got)
	}
	var release []log.Ack
	for _, l := range mb.Revoked {
		release = append(release, log.Ack{Partition: l.Partition, Epoch: l.Epoch, Release: true})
	}
	if res, err := s.AckGroup(ctx, "g", "b", release); err != nil || len(res) != len(release) || !res[0].Released {
		t.Fatalf("release: %+v %v", res, err)
	}
	ma = mustJoin(t, s, "g", feed, "a")
	if got := partitionsOf(ma.Partitions); !slices.Equal(got, wantA) {
		t.Fatalf("a holds %v after the release, want %v", got, wantA)
	}
	for _, l := range ma.Partitions {
		if l.Epoch != b.Partitions[l.Partition].Epoch+1 {
			t.Fatalf("partition %d back to a at epoch %d, b had %d", l.Partition, l.Epoch, b.Partitions[l.Partition].Epoch)
		}
	}
	// b's acknowledgement under its old epoch is refused for a's share.
	if _, err := s.AckGroup(ctx, "g", "b", []log.Ack{{Partition: wantA[0], Epoch: b.Partitions[wantA[0]].Epoch, Position: log.After(last).Token()}}); !errors.Is(err, log.ErrLeaseLost) {
		t.Fatalf("b's ack after release: %v", err)
	}

	// Both drain their shares: with what b took before, every event once.
	mb = mustJoin(t, s, "g", feed, "b")
	if got := partitionsOf(mb.Partitions); !slices.Equal(got, log.Assign([]string{"a", "b"}, "b", log.GroupPartitions)) || len(mb.Revoked) != 0 {
		t.Fatalf("b holds %v, revoked %v", got, partitionsOf(mb.Revoked))
	}
	all := append(firstB, drain(t, s, "g", feed, "a", 7)...)
	all = append(all, drain(t, s, "g", feed, "b", 7)...)
	seen := keysOf(all)
	if len(seen) != len(acked) || len(all) != len(acked) {
		t.Fatalf("%d distinct of %d deliveries, want each of %d once", len(seen), len(all), len(acked))
	}
}

// drainN reads and acknowledges n batches.
func drainN(t *testing.T, s log.GroupStore, group string, feed log.Feed, member string, limit, n int) []log.GroupEvent {
	t.Helper()
	var out []log.GroupEvent
	for range n {
		page := readBatch(t, s, group, feed, member, limit)
		out = append(out, page.Events...)
		ackBatch(t, s, group, member, page)
	}
	return out
}

// TestGroupsLeave: a member that leaves releases its partitions at once:
// the other takes them on its next heartbeat, without waiting for a TTL.
func TestGroupsLeave(t *testing.T) {
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		fastGroups(o)
		o.GroupLeaseTTL = 30 * time.Second // a lapse would fail the test
	})
	ctx := ctxT(t)
	feed := log.AllFeed
	mustJoin(t, s, "g", feed, "a")
	mustJoin(t, s, "g", feed, "b")
	ma := mustJoin(t, s, "g", feed, "a") // a gives up b's share
	var release []log.Ack
	for _, l := range ma.Revoked {
		release = append(release, log.Ack{Partition: l.Partition, Epoch: l.Epoch, Release: true})
	}
	if _, err := s.AckGroup(ctx, "g", "a", release); err != nil {
		t.Fatal(err)
	}
	mb := mustJoin(t, s, "g", feed, "b")
	if got := partitionsOf(mb.Partitions); !slices.Equal(got, log.Assign([]string{"a", "b"}, "b", log.GroupPartitions)) {
		t.Fatalf("b holds %v", got)
	}
	start := time.Now()
	if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
		t.Fatalf("leaving twice: %v", err)
	}
	mb = mustJoin(t, s, "g", feed, "b")
	if len(mb.Partitions) != log.GroupPartitions || mb.Members != 1 {
		t.Fatalf("after a left, b holds %v of %d members", partitionsOf(mb.Partitions), mb.Members)
	}
	if d := time.Since(start); d > o.GroupLeaseTTL/2 {
		t.Fatalf("handover took %v", d)
	}
}

// TestGroupsLag: lag counts the events between the checkpoints and the
// watermark, per partition and in total, drops to 0 once everything is
// acknowledged, stops at the cap, and is exported as a gauge.
func TestGroupsLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		fastGroups(o)
		o.Registerer = reg
		o.GroupLagRefresh = 100 * time.Millisecond
	})
	ctx := ctxT(t)
	acked, last := appendSpread(t, s, "lag", 6, 5)
	waitWatermark(t, s, last)
	feed := log.CategoryFeed("lag")
	mustJoin(t, s, "g", feed, "a")
	gauge := func() float64 { return gaugeValue(t, reg, "eventlog_group_lag_events", "group", "g") }

	info, err := s.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[int]int64{}
	for k := range acked {
		perShard[log.ShardOf(k.stream)]++
	}
	for _, p := range info.Partitions {
		if p.Lag != perShard[p.Partition] || p.LagCapped {
			t.Fatalf("partition %d lag %d (capped %v), want %d", p.Partition, p.Lag, p.LagCapped, perShard[p.Partition])
		}
	}
	if info.Lag != int64(len(acked)) || info.LagCapped || gauge() != float64(len(acked)) {
		t.Fatalf("lag %d (capped %v), gauge %v, want %d", info.Lag, info.LagCapped, gauge(), len(acked))
	}

	// A store with a small cap stops counting there.
	o.GroupLagCap, o.Registerer = 7, nil
	capped, err := cassandratest.Reopen(t, o).DescribeGroup(ctx, "g")
	if err != nil || capped.Lag != 7 || !capped.LagCapped {
		t.Fatalf("capped lag: %d %v %v", capped.Lag, capped.LagCapped, err)
	}

	// Half consumed, then all: the periodic refresh follows.
	drainN(t, s, "g", feed, "a", len(acked)/2, 1)
	info, _ = s.DescribeGroup(ctx, "g")
	if info.Lag != int64(len(acked)-len(acked)/2) {
		t.Fatalf("lag %d after consuming half of %d", info.Lag, len(acked))
	}
	drain(t, s, "g", feed, "a", 10)
	deadline := time.Now().Add(10 * time.Second)
	for gauge() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("gauge stuck at %v", gauge())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if info, _ = s.DescribeGroup(ctx, "g"); info.Lag != 0 {
		t.Fatalf("lag %d after consuming everything", info.Lag)
	}
}

// gaugeValue returns the value of the series of gauge name whose label
// has value v (-1 when there is none).
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name, label, v string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == v {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestGroupsErrors: unknown groups, another feed, bad names and
// acknowledgements are refused before anything is written.
func TestGroupsErrors(t *testing.T) {
	s, _ := cassandratest.NewStore(t, fastGroups)
	ctx := ctxT(t)
	if _, err := s.DescribeGroup(ctx, "nope"); !errors.Is(err, log.ErrGroupNotFound) {
		t.Fatalf("describe: %v", err)
	}
	if _, err := s.ReadGroup(ctx, log.GroupRead{Group: "nope", Member: "a"}); !errors.Is(err, log.ErrGroupNotFound) {
		t.Fatalf("read: %v", err)
	}
	if _, err := s.AckGroup(ctx, "nope", "a", []log.Ack{{Partition: 1, Epoch: 1}}); !errors.Is(err, log.ErrGroupNotFound) {
		t.Fatalf("ack: %v", err)
	}
	m := mustJoin(t, s, "g", log.TypeFeed("Created"), "")
	if _, err := log.ParseMemberID(m.Member); err != nil || m.Feed != log.TypeFeed("Created") {
		t.Fatalf("generated member %q: %v (feed %v)", m.Member, err, m.Feed)
	}
	if _, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: log.AllFeed, Member: "b"}); !errors.Is(err, log.ErrGroupFeedMismatch) {
		t.Fatalf("join with another feed: %v", err)
	}
	var ve *log.ValidationError
	for name, err := range map[string]error{
		"GroupName": func() error { _, err := s.JoinGroup(ctx, log.JoinRequest{Group: "a/b", Feed: log.AllFeed}); return err }(),
		"NoFeed":    func() error { _, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g2"}); return err }(),
		"Member": func() error {
			_, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: log.AllFeed, Member: "a b"})
			return err
		}(),
		"Partition": func() error {
			_, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Partitions: []int{16}})
			return err
		}(),
		"AckEpoch": func() error { _, err := s.AckGroup(ctx, "g", m.Member, []log.Ack{{Partition: 0}}); return err }(),
	} {
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.DescribeGroup(ctx, "g2"); !errors.Is(err, log.ErrGroupNotFound) {
		t.Fatalf("a refused join created the group: %v", err)
	}
}

// groupFault loses the request or the answer of the next conditional
// write of one kind on a group partition, once.
type groupFault struct {
	mu           sync.Mutex
	op           string
	send, answer bool
	hit          int
}

func (f *groupFault) arm(op string, send, answer bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op, f.send, f.answer, f.hit = op, send, answer, 0
}

func (f *groupFault) decide(op string) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != f.op {
		return true, true
	}
	f.op = ""
	f.hit++
	return f.send, f.answer
}

// TestGroupsOutcomeUnknown: a claim or an acknowledgement whose request or
// answer is lost is settled by a SERIAL re-read of the partition row,
// never retried blindly: a lost answer of an applied claim is a lease held,
// a lost request is no lease (the next heartbeat takes it); an ack lost
// either way ends with the checkpoint moved exactly once, and nothing
// acknowledged comes again.
func TestGroupsOutcomeUnknown(t *testing.T) {
	s, _ := cassandratest.NewStore(t, fastGroups)
	acked, last := appendSpread(t, s, "unk", 16, 3)
	waitWatermark(t, s, last)
	feed := log.CategoryFeed("unk")
	f := &groupFault{}
	cassandra.SetGroupFault(s, f.decide)

	f.arm("group_claim", true, false) // applied, answer lost
	if m := mustJoin(t, s, "g-answer", feed, "a"); len(m.Partitions) != log.GroupPartitions || f.hit != 1 {
		t.Fatalf("claim with a lost answer: holds %d partitions (fault hit %d), want all", len(m.Partitions), f.hit)
	}
	f.arm("group_claim", false, true) // never sent
	if m := mustJoin(t, s, "g-request", feed, "a"); len(m.Partitions) != log.GroupPartitions-1 || f.hit != 1 {
		t.Fatalf("claim with a lost request: holds %d partitions (fault hit %d), want all but one", len(m.Partitions), f.hit)
	}
	if m := mustJoin(t, s, "g-request", feed, "a"); len(m.Partitions) != log.GroupPartitions {
		t.Fatalf("the next heartbeat holds %d partitions, want all", len(m.Partitions))
	}

	for _, tc := range []struct {
		name         string
		send, answer bool
	}{{"AckAnswerLost", true, false}, {"AckRequestLost", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			group := "g-" + tc.name
			seen := map[evKey]int{}
			for i := 0; ; i++ {
				page := readBatch(t, s, group, feed, "a", 10)
				if len(page.Events) == 0 {
					break
				}
				for _, e := range page.Events {
					seen[evKey{e.Stream, e.Version}]++
				}
				f.arm("group_ack", tc.send, tc.answer) // one ack of each batch is lost
				ackBatch(t, s, group, "a", page)
				if f.hit != 1 {
					t.Fatalf("batch %d: fault hit %d times", i, f.hit)
				}
			}
			if len(seen) != len(acked) {
				t.Fatalf("read %d distinct events, want %d", len(seen), len(acked))
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("%s@%d delivered %d times after acknowledged batches", k.stream, k.version, n)
				}
			}
		})
	}
}
