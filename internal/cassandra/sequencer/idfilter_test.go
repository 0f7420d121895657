package sequencer

import (
	"testing"

	"github.com/google/uuid"
)

// TestIDFilter: an id added to the current or previous bucket is always
// reported as maybe seen (no false negatives, the property idempotency
// needs), one never added mostly not; moving into the next bucket keeps
// the previous bucket's ids and forgets the one before it; any other move
// is refused.
func TestIDFilter(t *testing.T) {
	f := newIDFilter(3, 2, 10_000)
	var in3, in2 []uuid.UUID
	for i := 0; i < 5000; i++ {
		a, b := uuid.New(), uuid.New()
		f.add(3, a)
		f.add(2, b)
		in3, in2 = append(in3, a), append(in2, b)
	}
	for _, id := range append(in3, in2...) {
		if !f.mayHave([]uuid.UUID{id}) {
			t.Fatalf("%s was added but is reported unseen", id)
		}
	}
	fp := 0
	for i := 0; i < 10_000; i++ {
		if f.mayHave([]uuid.UUID{uuid.New()}) {
			fp++
		}
	}
	if fp > 400 { // 2 filters at 1 %: about 200
		t.Fatalf("%d of 10,000 new ids reported as maybe seen", fp)
	}
	if !f.rotate(4, 3) {
		t.Fatal("the move to the next bucket was refused")
	}
	for _, id := range in3 {
		if !f.mayHave([]uuid.UUID{id}) {
			t.Fatalf("%s of the previous bucket forgotten", id)
		}
	}
	gone := 0
	for _, id := range in2 {
		if !f.mayHave([]uuid.UUID{id}) {
			gone++
		}
	}
	if gone < len(in2)*9/10 {
		t.Fatalf("only %d of %d ids of bucket 2 forgotten after two moves", gone, len(in2))
	}
	if f.rotate(6, 5) || f.rotate(4, 2) {
		t.Fatal("a move that skips a bucket was accepted")
	}
}

// TestIDFilterGrows: given forty times the ids it was sized for, a filter
// still has every one and takes few new ids for seen ones, in a few
// bytes an id (a filter sized once would answer "maybe" for nearly all).
func TestIDFilterGrows(t *testing.T) {
	f := newIDFilter(0, -1, minFilterIDs)
	n := 40 * minFilterIDs
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		f.add(0, ids[i])
	}
	for _, id := range ids {
		if !f.mayHave([]uuid.UUID{id}) {
			t.Fatalf("%s was added but is reported unseen", id)
		}
	}
	fp := 0
	for i := 0; i < 20_000; i++ {
		if f.mayHave([]uuid.UUID{uuid.New()}) {
			fp++
		}
	}
	if fp > 600 { // 6 links at 0.4 %: under 2.4 %
		t.Fatalf("%d of 20,000 new ids reported as maybe seen", fp)
	}
	if per := float64(f.bytes()) / float64(n); per > 4 { // 2-3 bytes an id (heads.go)
		t.Fatalf("%.1f bytes an id", per)
	}
}
