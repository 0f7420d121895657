package verify

import (
	"math"
	"testing"
)

// TestTokenRangesTileTheRing: the ranges stream_events is read in cover
// every Murmur3 token once: the first starts at MinInt64, the last ends
// at MaxInt64, each starts one past the end of the one before.
func TestTokenRangesTileTheRing(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000} {
		prev := int64(0)
		for i := range n {
			lo, hi := tokenRange(i, n)
			switch {
			case i == 0 && lo != math.MinInt64:
				t.Fatalf("n %d: first range starts at %d", n, lo)
			case i > 0 && lo != prev+1:
				t.Fatalf("n %d: range %d starts at %d, the one before ends at %d", n, i, lo, prev)
			case hi < lo:
				t.Fatalf("n %d: range %d is %d..%d", n, i, lo, hi)
			}
			prev = hi
		}
		if prev != math.MaxInt64 {
			t.Fatalf("n %d: last range ends at %d", n, prev)
		}
	}
}
