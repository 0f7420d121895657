package sequencer

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"
)

// counts is how many shards each instance of a is given.
func counts(a []string) map[string]int {
	out := map[string]int{}
	for _, id := range a {
		out[id]++
	}
	return out
}

// TestAssignBalanced: every shard has a member, and each member owns
// shards/members of them or one more, whatever the ids (plain rendezvous
// hashing gave both of 2 shards to one of 2 instances half the time).
func TestAssignBalanced(t *testing.T) {
	for trial := 0; trial < 200; trial++ {
		for _, c := range []struct{ members, shards int }{{1, 8}, {2, 2}, {2, 8}, {3, 4}, {3, 8}, {5, 16}, {4, 1024}, {9, 8}} {
			members := map[string]bool{}
			for i := 0; i < c.members; i++ {
				members[fmt.Sprintf("instance-%d-%d", trial, i)] = true
			}
			a := assign(members, c.shards)
			n := counts(a)
			floor := c.shards / c.members
			for id, k := range n {
				if !members[id] || k < floor || k > floor+1 {
					t.Fatalf("trial %d, %d shards over %d members: %q owns %d, want %d or %d (%v)", trial, c.shards, c.members, id, k, floor, floor+1, a)
				}
			}
			if want := min(c.members, c.shards); len(n) != want {
				t.Fatalf("trial %d, %d shards over %d members: %d owners, want %d (%v)", trial, c.shards, c.members, len(n), want, a)
			}
			// Every instance computes the same (the map's order is random).
			again := assign(members, c.shards)
			for s := range a {
				if a[s] != again[s] {
					t.Fatalf("trial %d: shard %d: %s, then %s", trial, s, a[s], again[s])
				}
			}
		}
	}
	if a := assign(nil, 4); a[0] != "" {
		t.Fatalf("no members: %v", a)
	}
}

// TestAssignMoves: an instance that joins takes about its share, mostly
// from the others' surplus, and one that leaves hands its shards to the
// rest without moving theirs much: few shards change hands beyond those
// the change must move.
func TestAssignMoves(t *testing.T) {
	const shards = 1024
	members := map[string]bool{}
	for i := 0; i < 4; i++ {
		members[fmt.Sprintf("instance-%d", i)] = true
	}
	before := assign(members, shards)
	members["instance-4"] = true
	after := assign(members, shards)
	moved, toNew := 0, 0
	for s := range before {
		if before[s] != after[s] {
			moved++
			if after[s] == "instance-4" {
				toNew++
			}
		}
	}
	t.Logf("join: %d moved, %d to the new instance", moved, toNew)
	if share := shards / 5; toNew < share || toNew > share+1 || moved > share*5/4 {
		t.Errorf("join: %d shards moved, %d of them to the new instance, want about %d", moved, toNew, share)
	}
	delete(members, "instance-4")
	delete(members, "instance-0")
	gone := assign(members, shards)
	moved = 0
	for s := range before {
		if before[s] != gone[s] {
			moved++
		}
	}
	t.Logf("leave: %d moved", moved)
	if share := shards / 4; moved < share || moved > share*5/4 {
		t.Errorf("leave: %d shards moved, want about %d (the leaver's)", moved, share)
	}
}

// Shards go only to the instances of the newest binary alive; instances
// whose binary is unknown (0) count as the oldest.
func TestNewestMembers(t *testing.T) {
	got := newest(map[string]int{"a": 6, "b": 7, "c": 7, "d": 0})
	if !maps.Equal(got, map[string]bool{"b": true, "c": true}) {
		t.Fatalf("newest = %v, want b and c", got)
	}
	got = newest(map[string]int{"a": 6, "b": 6})
	if !maps.Equal(got, map[string]bool{"a": true, "b": true}) {
		t.Fatalf("newest = %v, want a and b", got)
	}
}

// A failed read of the instances table keeps the members last read for 3
// lease TTLs (an older binary that saw itself alone would stop handing
// its shards to a newer one and claim the free ones back); after that,
// or before any read succeeded, this instance is alone. It is always
// there, at its own schema version.
func TestMembershipWhenReadsFail(t *testing.T) {
	s := &Sequencer{cfg: Config{Instance: "me", SchemaVersion: 6, LeaseTTL: time.Second}}
	t0 := time.Unix(1_000_000, 0)
	failed := errors.New("read failed")
	if got := s.membership(nil, failed, t0); !maps.Equal(got, map[string]int{"me": 6}) {
		t.Fatalf("no read yet, a failed one: %v, want me alone", got)
	}
	read := map[string]int{"a": 7, "b": 7}
	if got := s.membership(read, nil, t0); !maps.Equal(got, map[string]int{"a": 7, "b": 7, "me": 6}) {
		t.Fatalf("after a read: %v", got)
	}
	if _, ok := read["me"]; ok {
		t.Fatal("the read's map was changed")
	}
	for _, after := range []time.Duration{time.Second, 2999 * time.Millisecond} {
		got := s.membership(nil, failed, t0.Add(after))
		if !maps.Equal(got, map[string]int{"a": 7, "b": 7, "me": 6}) {
			t.Fatalf("a failed read %v after the last: %v, want the members last read", after, got)
		}
		got["c"] = 1 // the caller's to change
	}
	if got := s.membership(nil, failed, t0.Add(3*time.Second)); !maps.Equal(got, map[string]int{"me": 6}) {
		t.Fatalf("a failed read 3 TTLs after the last: %v, want me alone", got)
	}
	// Who is newest follows: with the members kept, the newer binaries
	// still get every shard.
	if got := newest(s.membership(nil, failed, t0.Add(time.Second))); got["me"] {
		t.Fatalf("newest %v: an older binary took itself for the newest after a failed read", got)
	}
}
