package feeds_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// End is the position after everything committed: on a log that does not
// grow it is where reading from the start ends, reading on from it returns
// nothing, and then exactly what commits afterwards. Segments of 4 rows:
// the walk crosses full segments, and ends in one that is full with the
// next not opened yet.
func TestEnd(t *testing.T) {
	o := newKeyspace(t, 3, 4)
	s := openStore(t, o)
	r := newReader(t, o, feeds.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	end := func() feeds.Cursor {
		t.Helper()
		c, err := r.End(ctx)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		return c
	}

	t.Run("Empty", func(t *testing.T) {
		if c := end(); !c.IsZero() {
			t.Fatalf("end of empty logs: %v", c)
		}
	})

	t.Run("FullSegment", func(t *testing.T) {
		// Four sequential appends: shard 0's rows 1-4, segment 0 full and
		// segment 1 not opened (the next commit opens it).
		stream := streamOnShard("full", 0, 3)
		for range 4 {
			mustAppend(t, s, stream, "X")
		}
		c := end()
		if got, want := c.Shard(0), (feeds.ShardPos{Seq: 5}); got != want {
			t.Fatalf("shard 0 ends at %v, want %v", got, want)
		}
		if p := read(t, r, feeds.Request{Feed: log.AllFeed, After: c}); len(p.Events) != 0 || !p.AtEnd {
			t.Fatalf("read from the end: %d events, at end %v", len(p.Events), p.AtEnd)
		}
	})

	t.Run("ReadOn", func(t *testing.T) {
		fill(t, s, 40) // several segments in every shard
		_, all := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Limit: 1000})
		c := end()
		if !c.Equal(all.Next) {
			t.Fatalf("end %v, reading from the start ends at %v", c, all.Next)
		}
		if p := read(t, r, feeds.Request{Feed: log.CategoryFeed("a"), After: c}); len(p.Events) != 0 || !p.AtEnd {
			t.Fatalf("read from the end: %d events, at end %v", len(p.Events), p.AtEnd)
		}
		var want []uuid.UUID
		for i := range 6 {
			res := mustAppend(t, s, streamOnShard("after", i%3, 3), "X", "Y")
			for _, e := range res.Events {
				want = append(want, e.ID)
			}
		}
		got, _ := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, After: c})
		gotIDs := ids(got)
		slices.SortFunc(gotIDs, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		if !slices.Equal(gotIDs, want) {
			t.Fatalf("after the end: %d events, want the %d appended since", len(gotIDs), len(want))
		}
	})
}
