package feeds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// fill writes a fixed mix: concurrent appends (so rows hold several) and
// sequential ones, over categories a, b, c and types X, Y.
func fill(t *testing.T, s *shardstore.Store, appends int) {
	t.Helper()
	appendAll(t, s, 4, appends, func(i int) log.AppendRequest {
		types := []string{"X", "Y", "X", "X"}[:1+i%4]
		if i%5 == 0 {
			types[0] = "Y"
		}
		return typesRequest(fmt.Sprintf("%c-%d", 'a'+rune(i%3), i%7), log.Any, types...)
	})
}

// On a log that does not grow, pages of any size are slices of one order,
// and reading on from any event's Cursor (through its token) returns
// exactly the events after it.
func TestResumeFromEveryToken(t *testing.T) {
	o := newKeyspace(t, 3, 10)
	s := openStore(t, o)
	fill(t, s, 60)
	r := newReader(t, o, feeds.Options{})
	// Pages of a reader with a small MaxLimit read ahead in ranges of a row
	// or two, several at once (the log has 60 rows, 10 a segment).
	ahead := newReader(t, o, feeds.Options{MaxLimit: 4, DefaultLimit: 2})
	// And with ChunkBytes at a byte: every query, and every range, one row.
	tiny := newReader(t, o, feeds.Options{MaxLimit: 40, DefaultLimit: 2, ChunkBytes: 1})
	for _, f := range []log.Feed{log.AllFeed, log.CategoryFeed("b"), log.TypeFeed("Y")} {
		t.Run(f.String(), func(t *testing.T) {
			ref, end := readToEnd(t, r, feeds.Request{Feed: f, Limit: 10_000})
			if len(ref) == 0 || len(ref) > 10_000 {
				t.Fatalf("%d events", len(ref))
			}
			for i, e := range ref {
				if !inFeed(f, e.RecordedEvent) {
					t.Fatalf("event %s of %s type %s", e.ID, e.Stream, e.Type)
				}
				if i == 0 {
					continue
				}
				// Merged by (commit time, shard, seq, index).
				p := ref[i-1]
				if c := e.Time.Compare(p.Time); c < 0 || c == 0 && (e.Shard < p.Shard ||
					e.Shard == p.Shard && (e.Seq < p.Seq || e.Seq == p.Seq && e.Index <= p.Index)) {
					t.Fatalf("event %d (%v shard %d %d.%d) after (%v shard %d %d.%d)", i, e.Time, e.Shard, e.Seq, e.Index, p.Time, p.Shard, p.Seq, p.Index)
				}
			}
			for _, limit := range []int{1, 2, 7} {
				paged, _ := readToEnd(t, r, feeds.Request{Feed: f, Limit: limit})
				if !slices.Equal(ids(paged), ids(ref)) {
					t.Fatalf("pages of %d: another order or set than one read", limit)
				}
				// The same, with the shards' fetches kept across pages.
				if got := readPages(t, r, f, feeds.Cursor{}, limit, end.Next); !slices.Equal(ids(got), ids(ref)) {
					t.Fatalf("Pages of %d: another order or set than one read", limit)
				}
				for _, rd := range []*feeds.Reader{ahead, tiny} {
					if got := readPages(t, rd, f, feeds.Cursor{}, limit, end.Next); !slices.Equal(ids(got), ids(ref)) {
						t.Fatalf("Pages of %d, reading ahead: another order or set than one read", limit)
					}
				}
			}
			for _, rd := range []*feeds.Reader{r, ahead, tiny} {
				for _, i := range []int{len(ref) / 3, len(ref) / 2} { // inside a row, for the all feed
					if got := readPages(t, rd, f, ref[i].Cursor, 3, end.Next); !slices.Equal(ids(got), ids(ref[i+1:])) {
						t.Fatalf("Pages from event %d: %d events, want the %d after it", i, len(got), len(ref)-i-1)
					}
				}
			}
			for i, e := range ref {
				after, err := r.Decode(r.Encode(e.Cursor, f.String()), f.String())
				if err != nil {
					t.Fatal(err)
				}
				rest, last := readToEnd(t, r, feeds.Request{Feed: f, After: after, Limit: 10_000})
				if !slices.Equal(ids(rest), ids(ref[i+1:])) {
					t.Fatalf("from event %d's cursor %v: %d events, want the %d after it", i, e.Cursor, len(rest), len(ref)-i-1)
				}
				if !last.Next.Equal(end.Next) {
					t.Fatalf("from event %d: ends at %v, want %v", i, last.Next, end.Next)
				}
			}
			// At the end: nothing more, still at the end.
			p := read(t, r, feeds.Request{Feed: f, After: end.Next})
			if len(p.Events) != 0 || !p.AtEnd || !p.Next.Equal(end.Next) {
				t.Fatalf("after the end: %d events, at end %v, next %v", len(p.Events), p.AtEnd, p.Next)
			}
		})
	}
}

func TestBadPositions(t *testing.T) {
	const shards = 2
	o := newKeyspace(t, shards, 5)
	s := openStore(t, o)
	r := newReader(t, o, feeds.Options{})
	stream := streamOnShard("job", 0, shards)
	for i := 0; i < 5; i++ { // rows 1..5 of shard 0: segment 0 full, 1 not opened
		mustAppend(t, s, stream, "T")
	}
	evs, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	if len(evs) != 5 || end.Next.Shard(0) != (feeds.ShardPos{Seq: 6}) || end.Next.Shard(1) != (feeds.ShardPos{}) {
		t.Fatalf("%d events, next %v", len(evs), end.Next)
	}
	at := func(p0, p1 feeds.ShardPos) feeds.Cursor { return feeds.NewCursor([]feeds.ShardPos{p0, p1}) }
	readAt := func(c feeds.Cursor) (feeds.Page, error) {
		// Through a token: authentic, so only the log can refuse it.
		tok := r.Encode(c, "all")
		c2, err := r.Decode(tok, "all")
		if err != nil {
			t.Fatalf("decode our own token of %v: %v", c, err)
		}
		return r.Read(context.Background(), feeds.Request{Feed: log.AllFeed, After: c2})
	}
	ok := func(c feeds.Cursor, want int) {
		t.Helper()
		p, err := readAt(c)
		if err != nil || len(p.Events) != want || !p.AtEnd {
			t.Fatalf("from %v: %d events, at end %v, err %v; want %d", c, len(p.Events), p.AtEnd, err, want)
		}
	}
	future := func(c feeds.Cursor) {
		t.Helper()
		_, err := readAt(c)
		if !errors.Is(err, feeds.ErrFuturePosition) {
			t.Fatalf("from %v: err %v, want ErrFuturePosition", c, err)
		}
		checkBad(t, c.String(), err)
	}
	ok(at(feeds.ShardPos{Seq: 6}, feeds.ShardPos{}), 0)
	ok(at(feeds.ShardPos{Seq: 3}, feeds.ShardPos{}), 3)
	future(at(feeds.ShardPos{Seq: 7}, feeds.ShardPos{}))           // segment 1 not opened, 7 ≠ 6
	future(at(feeds.ShardPos{Seq: 6, Index: 1}, feeds.ShardPos{})) // inside a row that does not exist
	future(at(feeds.ShardPos{Seq: 5, Index: 1}, feeds.ShardPos{})) // row 5 has one event
	future(at(feeds.ShardPos{Seq: 11}, feeds.ShardPos{}))          // segment 2, after a segment 1 that does not exist
	future(at(feeds.ShardPos{Seq: 4}, feeds.ShardPos{Seq: 2}))     // shard 1 has no row 1
	future(at(feeds.ShardPos{}, feeds.ShardPos{Seq: 1 << 40}))

	mustAppend(t, s, stream, "T", "U") // row 6 opens segment 1
	p, err := readAt(end.Next)
	if err != nil || len(p.Events) != 2 || p.Next.Shard(0) != (feeds.ShardPos{Seq: 7}) {
		t.Fatalf("after the new row: %d events, next %v, err %v", len(p.Events), p.Next, err)
	}
	ok(at(feeds.ShardPos{Seq: 6, Index: 1}, feeds.ShardPos{}), 1)
	ok(at(feeds.ShardPos{Seq: 7}, feeds.ShardPos{}), 0)
	future(at(feeds.ShardPos{Seq: 8}, feeds.ShardPos{}))  // segment 1 is at 6
	future(at(feeds.ShardPos{Seq: 11}, feeds.ShardPos{})) // segment 1 is not full

	// Tokens the keyspace did not issue for this feed.
	tok := r.Encode(at(feeds.ShardPos{Seq: 3}, feeds.ShardPos{}), "all")
	if _, err := r.Decode(tok, "category/job"); !errors.Is(err, feeds.ErrBadToken) {
		t.Fatalf("another feed's token: %v", err)
	}
	other := mustTokens(t, []byte(uuid.NewString()), shards) // another keyspace's secret
	if _, err := r.Decode(other.Encode(at(feeds.ShardPos{Seq: 3}, feeds.ShardPos{}), "all"), "all"); !errors.Is(err, feeds.ErrBadToken) {
		t.Fatalf("another keyspace's token: %v", err)
	}
	for _, bad := range []string{tok[:len(tok)-1], tok[1:], "x" + tok[1:], "AQIA"} {
		if _, err := r.Decode(bad, "all"); !errors.Is(err, feeds.ErrBadToken) {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
	// Cursors of another shard count, and malformed requests.
	_, err = r.Read(context.Background(), feeds.Request{Feed: log.AllFeed, After: feeds.NewCursor(make([]feeds.ShardPos, 3)[:1:1])})
	if err != nil {
		t.Fatalf("a zero cursor of any length is the start: %v", err)
	}
	_, err = r.Read(context.Background(), feeds.Request{Feed: log.AllFeed, After: feeds.NewCursor([]feeds.ShardPos{{Seq: 2}, {}, {}})})
	checkBad(t, "three shards", err)
	var ve *log.ValidationError
	for _, req := range []feeds.Request{
		{Feed: log.Feed{}},
		{Feed: log.CategoryFeed("")},
		{Feed: log.AllFeed, Shards: []int{}},
		{Feed: log.AllFeed, Shards: []int{2}},
		{Feed: log.AllFeed, Shards: []int{1, 1}},
	} {
		if _, err := r.Read(context.Background(), req); !errors.As(err, &ve) || errors.Is(err, feeds.ErrBadToken) {
			t.Fatalf("request %+v: %v, want a validation error", req, err)
		}
	}
}

// Tiny segments, and a restart that opens an empty segment (the new owner
// opens the next one when the current is full): reads cross them all.
func TestSegmentCrossing(t *testing.T) {
	o := newKeyspace(t, 1, 3)
	s := openStore(t, o)
	var want []uuid.UUID
	for i := 0; i < 6; i++ { // rows 1..6: segments 0 and 1 full
		res := mustAppend(t, s, fmt.Sprintf("s-%d", i%2), "T", "U")
		want = append(want, res.Events[0].ID, res.Events[1].ID)
	}
	s.Close()
	s = openStore(t, o) // takes the shard over: opens segment 2, empty
	r := newReader(t, o, feeds.Options{})
	for _, limit := range []int{1, 3, 4, 100} {
		got, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Limit: limit})
		if !slices.Equal(ids(got), want) {
			t.Fatalf("limit %d: %d events, want the %d written, in order", limit, len(got), len(want))
		}
		if end.Next.Shard(0) != (feeds.ShardPos{Seq: 7}) {
			t.Fatalf("limit %d: ends at %v", limit, end.Next)
		}
		if lastTime := got[len(got)-1].Time; !end.CompleteUpTo.Equal(lastTime.Add(-time.Millisecond)) {
			t.Fatalf("limit %d: complete up to %v, want just under the last commit %v", limit, end.CompleteUpTo, lastTime)
		}
	}
	_, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	for i := 0; i < 4; i++ { // rows 7..10: into segment 3
		res := mustAppend(t, s, "s-9", "V")
		want = append(want, res.Events[0].ID)
	}
	got, end2 := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, After: end.Next, Limit: 2})
	if !slices.Equal(ids(got), want[12:]) || end2.Next.Shard(0) != (feeds.ShardPos{Seq: 11}) {
		t.Fatalf("after the restart: %d events, next %v", len(got), end2.Next)
	}
}

// Shards: a read of some shards returns only their events and leaves the
// others' positions alone; reading the others from there gives the rest.
func TestShardFilter(t *testing.T) {
	const shards = 4
	o := newKeyspace(t, shards, 10)
	s := openStore(t, o)
	fill(t, s, 40)
	r := newReader(t, o, feeds.Options{})
	all, _ := readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	part, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Shards: []int{3, 1}, Limit: 5})
	for _, e := range part {
		if e.Shard != 1 && e.Shard != 3 || partition.ShardOf(string(e.Stream), shards) != e.Shard {
			t.Fatalf("shards 1, 3: event of %s from shard %d", e.Stream, e.Shard)
		}
	}
	if end.Next.Shard(0) != (feeds.ShardPos{}) || end.Next.Shard(2) != (feeds.ShardPos{}) {
		t.Fatalf("shards 1, 3 moved the others: %v", end.Next)
	}
	rest, end2 := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Shards: []int{0, 2}, After: end.Next, Limit: 5})
	for _, e := range rest {
		if e.Shard != 0 && e.Shard != 2 {
			t.Fatalf("shards 0, 2: event from shard %d", e.Shard)
		}
	}
	got := append(ids(part), ids(rest)...)
	want := ids(all)
	slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Fatalf("by shard: %d events; all: %d", len(got), len(want))
	}
	if p := read(t, r, feeds.Request{Feed: log.AllFeed, After: end2.Next}); len(p.Events) != 0 || !p.AtEnd {
		t.Fatalf("after both halves: %d events", len(p.Events))
	}
	if len(part) == 0 || len(rest) == 0 {
		t.Fatalf("a half is empty: %d, %d", len(part), len(rest))
	}
}

// CompleteUpTo: never back, always true, exact at the end; a shard with no
// commit counts with the floor its log was opened with; no log opened
// anywhere: no promise.
func TestCompleteUpTo(t *testing.T) {
	const shards = 3
	o := newKeyspace(t, shards, 10)
	r := newReader(t, o, feeds.Options{})
	p := read(t, r, feeds.Request{Feed: log.AllFeed})
	if len(p.Events) != 0 || !p.AtEnd || !p.CompleteUpTo.IsZero() || !p.Next.IsZero() {
		t.Fatalf("empty keyspace: %+v", p)
	}
	opened := time.Now()
	s := openStore(t, o)
	a, b := streamOnShard("a", 0, shards), streamOnShard("b", 1, shards) // shard 2 stays empty
	// The empty shard's floor: the store's clock when it took the shard.
	empty := read(t, r, feeds.Request{Feed: log.AllFeed, Shards: []int{2}})
	floor := empty.CompleteUpTo.Add(time.Millisecond)
	if len(empty.Events) != 0 || !empty.AtEnd || floor.Before(opened.Truncate(time.Millisecond)) || floor.After(time.Now()) {
		t.Fatalf("shard 2 before any commit: %+v, want complete up to just under the takeover (%v)", empty, opened)
	}
	for i := 0; i < 12; i++ {
		mustAppend(t, s, a, "T")
		if i%3 == 0 {
			mustAppend(t, s, b, "T", "T")
		}
	}
	all, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	last := map[int]time.Time{}
	for _, e := range all {
		last[e.Shard] = e.Time
	}
	want := earliest(last[0], last[1], floor).Add(-time.Millisecond)
	if len(last) != 2 || !end.CompleteUpTo.Equal(want) {
		t.Fatalf("at the end: complete up to %v, want %v (shard times %v, shard 2's floor %v)", end.CompleteUpTo, want, last, floor)
	}
	want = earliest(last[0], last[1]).Add(-time.Millisecond)
	if _, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Shards: []int{0, 1}}); !end.CompleteUpTo.Equal(want) {
		t.Fatalf("shards 0, 1 at the end: complete up to %v, want %v", end.CompleteUpTo, want)
	}
	// The empty shard's first commit keeps the promise the floor made.
	if c := streamOnShard("c", 2, shards); !mustAppend(t, s, c, "T").Time.After(end.CompleteUpTo) {
		t.Fatalf("shard 2's first commit is at or before complete_up_to %v", end.CompleteUpTo)
	}
	all, _ = readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	last = map[int]time.Time{}
	for _, e := range all {
		last[e.Shard] = e.Time
	}
	if len(last) != 3 {
		t.Fatalf("commits in %d shards, want 3", len(last))
	}
	want = earliest(last[0], last[1], last[2]).Add(-time.Millisecond)
	for _, f := range []log.Feed{log.AllFeed, log.TypeFeed("T"), log.CategoryFeed("b")} {
		req := feeds.Request{Feed: f, Limit: 1}
		var prev time.Time
		n := 0
		seen := map[uuid.UUID]bool{}
		for {
			p := read(t, r, req)
			n += len(p.Events)
			for _, e := range p.Events {
				seen[e.ID] = true
			}
			if p.CompleteUpTo.Before(prev) || p.CompleteUpTo.IsZero() {
				t.Fatalf("%s: complete up to %v after %v", f, p.CompleteUpTo, prev)
			}
			prev = p.CompleteUpTo
			for _, e := range all {
				if !seen[e.ID] && inFeed(f, e.RecordedEvent) && !e.Time.After(p.CompleteUpTo) {
					t.Fatalf("%s: complete up to %v, but %s v%d at %v is still to come", f, p.CompleteUpTo, e.Stream, e.Version, e.Time)
				}
			}
			if f.Kind == log.FeedAll && n < len(all) {
				// Not past the next event, and not below what was passed.
				if next := all[n].Time; !p.CompleteUpTo.Before(next) {
					t.Fatalf("all: complete up to %v, next event at %v", p.CompleteUpTo, next)
				}
				if lo := earliest(all[n-1].Time, last[0], last[1], last[2]).Add(-time.Millisecond); p.CompleteUpTo.Before(lo) {
					t.Fatalf("all: complete up to %v, below %v", p.CompleteUpTo, lo)
				}
			}
			if p.AtEnd {
				break
			}
			req.After = p.Next
		}
		if !prev.Equal(want) && f.Kind == log.FeedAll {
			t.Fatalf("%s: ends complete up to %v, want %v", f, prev, want)
		}
	}
}

// Limit bounds the events of a page; ScanRows bounds the rows: a rare
// feed moves on through rows it does not select, a bounded number per
// read, without skipping its event.
func TestLimitAndScanBudget(t *testing.T) {
	o := newKeyspace(t, 1, 8)
	s := openStore(t, o)
	for i := 0; i < 29; i++ {
		mustAppend(t, s, "common-1", "T", "T")
	}
	rare := mustAppend(t, s, "rare-1", "R")
	r := newReader(t, o, feeds.Options{ScanRows: 5})
	for _, limit := range []int{1, 7, 58} {
		req := feeds.Request{Feed: log.AllFeed, Limit: limit}
		n := 0
		for {
			p := read(t, r, req)
			n += len(p.Events)
			if len(p.Events) != limit && n < 59 && len(p.Events) < 5 {
				t.Fatalf("limit %d: page of %d with %d to come", limit, len(p.Events), 59-n)
			}
			if p.AtEnd {
				break
			}
			req.After = p.Next
		}
		if n != 59 {
			t.Fatalf("limit %d: %d events", limit, n)
		}
	}
	req := feeds.Request{Feed: log.CategoryFeed("rare"), Limit: 10}
	var got []feeds.Event
	for reads := 1; ; reads++ {
		p := read(t, r, req)
		from, to := req.After.Shard(0).Seq, p.Next.Shard(0).Seq
		if to <= max(from, 1) || to-max(from, 1) > 5 {
			t.Fatalf("read %d moved from row %d to %d, want 1..5 rows on", reads, from, to)
		}
		got = append(got, p.Events...)
		if p.AtEnd {
			if reads != 6 {
				t.Fatalf("%d reads for 30 rows of 5", reads)
			}
			break
		}
		if len(p.Events) != 0 {
			t.Fatal("the rare event before the last row")
		}
		req.After = p.Next
	}
	if len(got) != 1 || got[0].ID != rare.Events[0].ID || got[0].Seq != 30 {
		t.Fatalf("rare feed: %d events", len(got))
	}
	// Limit above the maximum is lowered to it.
	r2 := newReader(t, o, feeds.Options{MaxLimit: 3, DefaultLimit: 2})
	if p := read(t, r2, feeds.Request{Feed: log.AllFeed}); len(p.Events) != 2 {
		t.Fatalf("default limit 2: %d events", len(p.Events))
	}
	if p := read(t, r2, feeds.Request{Feed: log.AllFeed, Limit: 50}); len(p.Events) != 3 {
		t.Fatalf("max limit 3: %d events", len(p.Events))
	}
}

func earliest(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

// readPages reads f from after to its end with Reader.Pages, limit events
// a page, checking each page as read does and that the last is at end.
func readPages(t *testing.T, r *feeds.Reader, f log.Feed, after feeds.Cursor, limit int, end feeds.Cursor) []feeds.Event {
	t.Helper()
	return readPagesOf(t, r, feeds.Request{Feed: f, After: after}, limit, 0, end)
}

// readPagesOf is readPages of req (its Feed, After and Shards), each page
// also bounded by maxBytes.
func readPagesOf(t *testing.T, r *feeds.Reader, req feeds.Request, limit, maxBytes int, end feeds.Cursor) []feeds.Event {
	t.Helper()
	f := req.Feed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := r.Pages(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	var (
		out  []feeds.Event
		prev []feeds.Event // the page before, as Next returned it
		n    int           // out's length before it
	)
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("no end in sight")
		}
		p, err := ps.Next(limit, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		// A page is the caller's until the second Next after it.
		for j := range prev {
			if !sameEvent(&prev[j], &out[n+j]) {
				t.Fatalf("page %d changed under the next Next: event %d is %+v, was %+v", i-1, j, prev[j].RecordedEvent, out[n+j].RecordedEvent)
			}
		}
		prev, n = p.Events, len(out)
		if len(p.Events) > limit {
			t.Fatalf("page of %d events, limit %d", len(p.Events), limit)
		}
		if n := len(p.Events); n > 0 && f.Kind == log.FeedAll && !p.Events[n-1].Cursor.Equal(p.Next) {
			t.Fatalf("Next %v, last event's cursor %v", p.Next, p.Events[n-1].Cursor)
		}
		// Copies of the bytes and cursors too: the page's may be reused,
		// and the check above must see it.
		for _, e := range p.Events {
			e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
			e.Cursor = feeds.NewCursor(e.Cursor.Positions())
			out = append(out, e)
		}
		if p.AtEnd {
			if !p.Next.Equal(end) {
				t.Fatalf("ends at %v, want %v", p.Next, end)
			}
			if again, err := ps.Next(limit, maxBytes); err != nil || !again.AtEnd || len(again.Events) != 0 || !again.Next.Equal(end) {
				t.Fatalf("after the end: %d events, at end %v, next %v, %v", len(again.Events), again.AtEnd, again.Next, err)
			}
			return out
		}
	}
}

// An idle shard's owner raises its log's floor, so complete_up_to moves on
// with the shards that commit instead of stopping at the idle shard's last
// commit; and the shard's next commit is not before the floor a read saw.
func TestIdleFloor(t *testing.T) {
	// Segments of 10 rows, and of 1: the idle shard's last commit fills
	// its segment, whose floor a reader at the end must still find.
	for _, rows := range []int64{10, 1} {
		t.Run(fmt.Sprintf("segments of %d", rows), func(t *testing.T) { testIdleFloor(t, rows) })
	}
}

func testIdleFloor(t *testing.T, segmentRows int64) {
	const shards = 3 // shard 2 never commits: its owner raises its floor too
	o := newKeyspace(t, shards, segmentRows)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: 2 * time.Second, FloorEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := newReader(t, o, feeds.Options{})
	busy, idle := streamOnShard("busy", 0, shards), streamOnShard("idle", 1, shards)
	first := mustAppend(t, s, idle, "T")
	for start := time.Now(); time.Since(start) < 1500*time.Millisecond; {
		mustAppend(t, s, busy, "T")
		time.Sleep(20 * time.Millisecond)
	}
	_, end := readToEnd(t, r, feeds.Request{Feed: log.AllFeed})
	if min := first.Time.Add(time.Second); end.CompleteUpTo.Before(min) {
		t.Fatalf("complete up to %v: held at the idle shard's commit %v", end.CompleteUpTo, first.Time)
	}
	next := mustAppend(t, s, idle, "T")
	if !next.Time.After(end.CompleteUpTo) {
		t.Fatalf("a commit at %v, after complete_up_to %v was read", next.Time, end.CompleteUpTo)
	}
	rest, _ := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, After: end.Next})
	if len(rest) != 1 || rest[0].ID != next.Events[0].ID {
		t.Fatalf("after the end: %d events, want the idle shard's new one", len(rest))
	}
}

// sameEvent: the same event at the same place, after the same cursor.
func sameEvent(a, b *feeds.Event) bool {
	return a.Stream == b.Stream && a.Version == b.Version && a.ID == b.ID && a.Type == b.Type &&
		a.Time.Equal(b.Time) && string(a.Data) == string(b.Data) && string(a.Metadata) == string(b.Metadata) &&
		a.Shard == b.Shard && a.Seq == b.Seq && a.Index == b.Index && a.Cursor.Equal(b.Cursor)
}

// A shard whose log was never opened makes no promise, whatever the others
// promise: its first owner may commit at any time its clock says.
func TestCompleteUpToUnopened(t *testing.T) {
	const shards = 3
	o := newKeyspace(t, shards, 10)
	session, serial := newSession(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Shard 1's log opened as an owner opens it; shards 0 and 2 untaken.
	floor := time.Now().UTC().Truncate(time.Millisecond)
	if applied, err := shardlog.New(session, serial).Open(ctx, 1, 0, 1, 0, 0, floor); err != nil || !applied {
		t.Fatalf("open shard 1: %v, %v", applied, err)
	}
	r := newReader(t, o, feeds.Options{})
	if p := read(t, r, feeds.Request{Feed: log.AllFeed, Shards: []int{1}}); !p.CompleteUpTo.Equal(floor.Add(-time.Millisecond)) {
		t.Fatalf("shard 1: complete up to %v, want just under its floor %v", p.CompleteUpTo, floor)
	}
	for _, sel := range [][]int{nil, {0, 1}, {1, 2}} {
		if p := read(t, r, feeds.Request{Feed: log.AllFeed, Shards: sel}); !p.CompleteUpTo.IsZero() || !p.AtEnd {
			t.Fatalf("shards %v: complete up to %v, at end %v; want no promise", sel, p.CompleteUpTo, p.AtEnd)
		}
	}
}

// A continuous read decompresses records into buffers it reuses once the
// pages holding their events are released (the second Next after): with
// the pool overwriting what it takes back, the page before the last keeps
// its bytes, and every event reads as a one-page-at-a-time read returns
// it: for the all feed and for feeds that pass rows without an event, of
// every shard or one (a consumer group's), pages cut by count or by bytes.
func TestPagesReuseBuffers(t *testing.T) {
	o := newKeyspace(t, 2, 10)
	s := openStore(t, o)
	pad := strings.Repeat("0123456789", 40)
	appendAll(t, s, 4, 48, func(i int) log.AppendRequest {
		// Records of a few KiB: compressed, so read into pooled buffers.
		// Categories p and q, types T and U, in runs.
		req := log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("%c-%d", "pq"[i/8%2], i%5)), Expected: log.Any}
		for j := range 1 + i%6 {
			req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: string("TU"[i/12%2]),
				Data: json.RawMessage(fmt.Sprintf(`{"append":%d,"event":%d,"pad":%q}`, i, j, pad))})
		}
		return req
	})
	for _, f := range []log.Feed{log.AllFeed, log.CategoryFeed("p"), log.TypeFeed("U")} {
		for _, shards := range [][]int{nil, {1}} {
			ref, end := readToEnd(t, newReader(t, o, feeds.Options{}), feeds.Request{Feed: f, Limit: 10_000, Shards: shards})
			if len(ref) == 0 {
				t.Fatalf("%s, shards %v: no events", f, shards)
			}
			// Pages of one event, of three, and of about two (an event's
			// data is over 400 bytes), each from a fresh reader.
			for _, size := range []struct{ limit, maxBytes int }{{1, 0}, {3, 0}, {4, 1000}} {
				r := newReader(t, o, feeds.Options{MaxLimit: 4, DefaultLimit: 2})
				r.PoisonPool()
				got := readPagesOf(t, r, feeds.Request{Feed: f, Shards: shards}, size.limit, size.maxBytes, end.Next)
				if len(got) != len(ref) {
					t.Fatalf("%s, shards %v, pages of %+v: %d events, want %d", f, shards, size, len(got), len(ref))
				}
				for i := range got {
					if !sameEvent(&got[i], &ref[i]) {
						t.Fatalf("%s, shards %v, pages of %+v: event %d is %+v, want %+v", f, shards, size, i, got[i].RecordedEvent, ref[i].RecordedEvent)
					}
				}
				if r.PoolHits() == 0 {
					t.Fatalf("%s, shards %v, pages of %+v: no record buffer was reused: the test reads no compressed record twice into one buffer", f, shards, size)
				}
			}
		}
	}
}

// Records under 512 bytes are stored plain, and a continuous read reads
// the rows it knows committed into one buffer, row after row
// (shardlog.Log.CommittedRows): each row's events must be copied out of
// it, or a later row overwrites an earlier one's events before the merge
// takes them.
func TestPagesOfPlainRecords(t *testing.T) {
	// Enough rows, in segments long enough, for the read to query ranges
	// of many rows (ahead): it reads ahead in ranges of two batches of
	// 32 events, when there are two ranges or more to read.
	const n = 1000
	o := newKeyspace(t, 2, 2000)
	s := openStore(t, o)
	appendAll(t, s, 4, n, func(i int) log.AppendRequest {
		return log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("s-%d", i%7)), Expected: log.Any,
			Events: []log.ProposedEvent{{ID: uuid.New(), ClientID: true, Type: "T", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}}}
	})
	ref, end := readToEnd(t, newReader(t, o, feeds.Options{}), feeds.Request{Feed: log.AllFeed, Limit: 10_000})
	if len(ref) != n {
		t.Fatalf("%d events, want %d", len(ref), n)
	}
	for _, limit := range []int{1, 7, 64} {
		r := newReader(t, o, feeds.Options{MaxLimit: 64, DefaultLimit: 2})
		got := readPagesOf(t, r, feeds.Request{Feed: log.AllFeed}, limit, 0, end.Next)
		if len(got) != len(ref) {
			t.Fatalf("pages of %d: %d events, want %d", limit, len(got), len(ref))
		}
		for i := range got {
			if !sameEvent(&got[i], &ref[i]) {
				t.Fatalf("pages of %d: event %d is %+v, want %+v", limit, i, got[i].RecordedEvent, ref[i].RecordedEvent)
			}
		}
	}
}
