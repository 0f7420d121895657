package log_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// partitions is a group's partition count in these tests (a keyspace's
// shards).
const partitions = 16

// TestAssign: every member computes the same split from the same list,
// whatever its order; the split covers every partition once and is
// balanced.
func TestAssign(t *testing.T) {
	for n := 1; n <= partitions+2; n++ {
		var members []string
		for i := range n {
			members = append(members, fmt.Sprintf("m-%02d", i))
		}
		shuffled := slices.Clone(members)
		slices.Reverse(shuffled)
		owner := map[int]string{}
		lo, hi := partitions, 0
		for _, m := range members {
			got := log.Assign(members, m, partitions)
			if again := log.Assign(append(shuffled, m), m, partitions); !slices.Equal(got, again) {
				t.Fatalf("n=%d %s: %v, from another order %v", n, m, got, again)
			}
			for _, p := range got {
				if prev, ok := owner[p]; ok {
					t.Fatalf("n=%d: partition %d to %s and %s", n, p, prev, m)
				}
				owner[p] = m
			}
			lo, hi = min(lo, len(got)), max(hi, len(got))
		}
		if len(owner) != partitions {
			t.Fatalf("n=%d: %d partitions assigned", n, len(owner))
		}
		if n <= partitions && hi-lo > 1 {
			t.Fatalf("n=%d: unbalanced, %d..%d partitions per member", n, lo, hi)
		}
	}
	if got := log.Assign([]string{"a", "b"}, "c", partitions); got != nil {
		t.Fatalf("a non-member got %v", got)
	}
}

func TestValidateAcks(t *testing.T) {
	ok := []log.Ack{{Partition: 0, Epoch: 1}, {Partition: 15, Epoch: 3, Release: true}}
	if err := log.ValidateAcks(ok, partitions); err != nil {
		t.Fatal(err)
	}
	for name, acks := range map[string][]log.Ack{
		"None":      nil,
		"Range":     {{Partition: 16, Epoch: 1}},
		"Negative":  {{Partition: -1, Epoch: 1}},
		"Twice":     {{Partition: 2, Epoch: 1}, {Partition: 2, Epoch: 1}},
		"EpochZero": {{Partition: 2}},
	} {
		var ve *log.ValidationError
		if err := log.ValidateAcks(acks, partitions); !errors.As(err, &ve) || ve.Code != log.CodeInvalidRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestGroupNames(t *testing.T) {
	for _, ok := range []string{"billing", "a", "proj-1.v2"} {
		if _, err := log.ParseGroupName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a/b", string(make([]byte, 101))} {
		var ve *log.ValidationError
		if _, err := log.ParseGroupName(bad); !errors.As(err, &ve) || ve.Code != log.CodeInvalidGroup {
			t.Errorf("group %q: %v", bad, err)
		}
		if _, err := log.ParseMemberID(bad); !errors.As(err, &ve) || ve.Code != log.CodeInvalidMember {
			t.Errorf("member %q: %v", bad, err)
		}
	}
	for in, want := range map[string]log.Feed{"all": log.AllFeed, "category/user": log.CategoryFeed("user"), "type/A.b": log.TypeFeed("A.b")} {
		if got, err := log.ParseFeedPath(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "all/x", "category/", "category/a-b", "stream/x"} {
		if _, err := log.ParseFeedPath(bad); err == nil {
			t.Errorf("feed %q accepted", bad)
		}
	}
	if !errors.Is(&log.LeaseLostError{Partitions: []int{1}}, log.ErrLeaseLost) {
		t.Fatal("LeaseLostError does not match ErrLeaseLost")
	}
}
