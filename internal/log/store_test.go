package log

import (
	"testing"
	"time"
)

func TestReadRangeCut(t *testing.T) {
	until := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		from, to int64
		version  int64
		wantTo   int64
		wantOK   bool
	}{
		{"HeadBecomesVersion", 1, 0, 7, 7, true},
		{"FromZero", 0, 0, 7, 7, true},
		{"ToBelowVersionKept", 1, 5, 7, 5, true},
		{"ToAboveVersionCut", 1, 9, 7, 7, true},
		{"FromAtVersion", 7, 0, 7, 7, true},
		{"FromAboveVersion", 8, 0, 7, 0, false},
		{"NothingCommitted", 1, 0, 0, 0, false},
		{"NothingCommittedFromZero", 0, 0, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ok := ReadRange{Stream: "s-1", From: c.from, To: c.to, Limit: 3, Backward: true, UntilTime: until}.Cut(c.version)
			if ok != c.wantOK {
				t.Fatalf("ok = %v, want %v", ok, c.wantOK)
			}
			if !r.UntilTime.IsZero() {
				t.Fatalf("UntilTime kept: %v", r.UntilTime)
			}
			if ok && (r.To != c.wantTo || r.From != c.from || r.Limit != 3 || !r.Backward || r.Stream != "s-1") {
				t.Fatalf("got %+v, want to %d and the rest unchanged", r, c.wantTo)
			}
		})
	}
}
