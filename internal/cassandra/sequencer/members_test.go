package sequencer

import (
	"fmt"
	"testing"
)

// Shards spread evenly over instances, and a joining instance takes
// shards only from the others, about its share.
func TestDesiredSpread(t *testing.T) {
	members := map[string]bool{}
	for i := 0; i < 4; i++ {
		members[fmt.Sprintf("instance-%d", i)] = true
	}
	const shards = 1024
	count := map[string]int{}
	before := make([]string, shards)
	for s := 0; s < shards; s++ {
		before[s] = desired(members, s)
		count[before[s]]++
	}
	for id, n := range count {
		if n < shards/4*3/4 || n > shards/4*5/4 {
			t.Errorf("%s owns %d of %d shards, want about %d", id, n, shards, shards/4)
		}
	}
	members["instance-4"] = true
	moved := 0
	for s := 0; s < shards; s++ {
		if d := desired(members, s); d != before[s] {
			if d != "instance-4" {
				t.Fatalf("shard %d moved from %s to %s, not to the new instance", s, before[s], d)
			}
			moved++
		}
	}
	if moved < shards/5*3/4 || moved > shards/5*5/4 {
		t.Errorf("%d shards moved to the new instance, want about %d", moved, shards/5)
	}
	// Two instances, few shards: neither is left without any (the
	// spread is not decided by the ids alone).
	for trial := 0; trial < 50; trial++ {
		two := map[string]bool{fmt.Sprintf("a-%d", trial): true, fmt.Sprintf("b-%d", trial): true}
		got := map[string]int{}
		for s := 0; s < 16; s++ {
			got[desired(two, s)]++
		}
		if len(got) != 2 {
			t.Fatalf("trial %d: 16 shards over 2 instances: %v", trial, got)
		}
	}
}
