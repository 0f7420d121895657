package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// testGroups: a consumer group on a category, one member on the first
// instance, a second member joining on the last; the first hands over the
// partitions it is told to give up (acknowledging, then releasing them)
// and later leaves. Members acknowledge each read before their next join,
// so every event is delivered exactly once, and the lag ends at 0. Stores
// without consumer groups skip it.
func testGroups(t *testing.T, s *suite) {
	c := s.cluster(t, Config{})
	stores := c.Stores()
	first, ok1 := stores[0].(log.GroupStore)
	last, ok2 := stores[len(stores)-1].(log.GroupStore)
	if !ok1 || !ok2 {
		t.Skip("the store has no consumer groups")
	}
	ctx := ctxT(t)
	const streams, perStream = 12, 3
	for i := range streams {
		st := stores[i%len(stores)]
		mustAppend(t, st, log.StreamID(fmt.Sprintf("grp-%d", i)), log.Any, events(perStream, "Grouped"))
	}
	// Another category: not in the group's feed.
	mustAppend(t, stores[0], "other-1", log.Any, events(2, "Grouped"))
	feed := log.CategoryFeed("grp")
	delivered := map[string]int{}
	total := 0
	secrets := map[string]string{} // of stores with member secrets
	join := func(gs log.GroupStore, member string) log.Membership {
		t.Helper()
		m, err := gs.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: member, Secret: secrets[member]})
		if err != nil {
			t.Fatalf("join %s: %v", member, err)
		}
		if m.Secret != "" {
			secrets[member] = m.Secret
		}
		return m
	}
	// consume joins, releases what it must give up, reads a page and
	// acknowledges it; it returns the events read.
	consume := func(gs log.GroupStore, member string) int {
		t.Helper()
		m := join(gs, member)
		if len(m.Revoked) > 0 {
			var rel []log.Ack
			for _, l := range m.Revoked {
				rel = append(rel, log.Ack{Partition: l.Partition, Epoch: l.Epoch, Release: true})
			}
			if _, err := gs.AckGroup(ctx, "g", member, rel); err != nil {
				t.Fatalf("%s releases %d partitions: %v", member, len(rel), err)
			}
		}
		p, err := gs.ReadGroup(ctx, log.GroupRead{Group: "g", Member: member, Limit: 7})
		if err != nil {
			t.Fatalf("%s reads: %v", member, err)
		}
		for _, e := range p.Events {
			if e.Stream.Category() != "grp" {
				t.Fatalf("%s read %s@%d, not in the group's feed", member, e.Stream, e.Version)
			}
			delivered[fmt.Sprintf("%s@%d", e.Stream, e.Version)]++
		}
		total += len(p.Events)
		var acks []log.Ack
		for _, pr := range p.Partitions {
			acks = append(acks, log.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
		}
		if len(acks) > 0 {
			if _, err := gs.AckGroup(ctx, "g", member, acks); err != nil {
				t.Fatalf("%s acknowledges: %v", member, err)
			}
		}
		return len(p.Events)
	}
	a := join(first, "a")
	if len(a.Partitions) == 0 || a.Members != 1 {
		t.Fatalf("first member: %d partitions, %d members", len(a.Partitions), a.Members)
	}
	partitions := len(a.Partitions)
	consume(first, "a")
	b := join(last, "b")
	if b.Members != 2 {
		t.Fatalf("second member sees %d members", b.Members)
	}
	deadline := time.Now().Add(time.Minute)
	left := false
	for total < streams*perStream || !left {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d events in a minute", total, streams*perStream)
		}
		if !left {
			consume(first, "a")
		}
		consume(last, "b")
		if total >= streams*perStream/2 && !left {
			if err := first.LeaveGroup(ctx, "g", "a"); err != nil {
				t.Fatalf("a leaves: %v", err)
			}
			left = true
		}
		time.Sleep(20 * time.Millisecond) // a store whose feeds trail its commits
	}
	for k, n := range delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	if len(delivered) != streams*perStream {
		t.Fatalf("delivered %d distinct events, want %d", len(delivered), streams*perStream)
	}
	if m := join(last, "b"); len(m.Partitions) != partitions {
		t.Fatalf("b holds %d of %d partitions after a left", len(m.Partitions), partitions)
	}
	info, err := first.DescribeGroup(ctx, "g")
	if err != nil || info.Lag != 0 || len(info.Partitions) != partitions || info.Feed != feed {
		t.Fatalf("describe: lag %d, %d partitions, feed %s (%v)", info.Lag, len(info.Partitions), info.Feed, err)
	}
	if _, err := last.ReadGroup(context.Background(), log.GroupRead{Group: "g", Member: "b"}); err != nil {
		t.Fatalf("read after draining: %v", err)
	}
}
