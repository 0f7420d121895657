package feeds_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// written is what the appenders were told: acknowledged events, and the
// events of appends whose outcome is unknown (in the feeds once or never).
type written struct {
	mu    sync.Mutex
	acked map[uuid.UUID]log.RecordedEvent
	maybe map[uuid.UUID]bool
}

func (w *written) add(req log.AppendRequest, res log.AppendResult, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		for i, e := range req.Events {
			w.acked[e.ID] = log.RecordedEvent{Stream: req.Stream, ID: e.ID, Type: e.Type, Version: res.FirstVersion + int64(i)}
		}
	case errors.Is(err, log.ErrOutcomeUnknown):
		for _, e := range req.Events {
			w.maybe[e.ID] = true
		}
	}
}

func inFeed(f log.Feed, e log.RecordedEvent) bool {
	switch f.Kind {
	case log.FeedCategory:
		return e.Stream.Category() == f.Name
	case log.FeedType:
		return e.Type == f.Name
	}
	return true
}

// pageMark is where a page ended in a reader's sequence.
type pageMark struct {
	events   int // events returned up to and including the page
	complete time.Time
}

// checkFeed checks I8 for one feed: every acknowledged event of the feed
// exactly once, nothing else (but unknown outcomes), each stream in
// version order, each shard in log order; and CompleteUpTo monotone and
// true: every event at or before a page's CompleteUpTo came by that page.
func checkFeed(t *testing.T, f log.Feed, shards int, got []feeds.Event, marks []pageMark, w *written) {
	t.Helper()
	seen := map[uuid.UUID]int{}
	lastVersion := map[log.StreamID]int64{}
	type at struct {
		seq   int64
		index int
		time  time.Time
	}
	lastAt := map[int]at{}
	for i, e := range got {
		if j, dup := seen[e.ID]; dup {
			t.Fatalf("%s: event %s (%s v%d) at %d and %d", f, e.ID, e.Stream, e.Version, j, i)
		}
		seen[e.ID] = i
		want, ok := w.acked[e.ID]
		switch {
		case ok:
			if want.Stream != e.Stream || want.Version != e.Version || want.Type != e.Type {
				t.Fatalf("%s: event %s is %s v%d %s, acknowledged as %s v%d %s", f, e.ID, e.Stream, e.Version, e.Type, want.Stream, want.Version, want.Type)
			}
		case w.maybe[e.ID]:
		default:
			t.Fatalf("%s: event %s (%s v%d) was never appended", f, e.ID, e.Stream, e.Version)
		}
		if !inFeed(f, e.RecordedEvent) {
			t.Fatalf("%s: event %s of %s type %s is not the feed's", f, e.ID, e.Stream, e.Type)
		}
		if e.Version <= lastVersion[e.Stream] {
			t.Fatalf("%s: %s v%d after v%d", f, e.Stream, e.Version, lastVersion[e.Stream])
		}
		lastVersion[e.Stream] = e.Version
		if sh := partition.ShardOf(string(e.Stream), shards); sh != e.Shard {
			t.Fatalf("%s: %s read from shard %d, lives on %d", f, e.Stream, e.Shard, sh)
		}
		p := lastAt[e.Shard]
		if e.Seq < p.seq || e.Seq == p.seq && e.Index <= p.index || e.Time.Before(p.time) {
			t.Fatalf("%s: shard %d goes back: %d.%d at %v after %d.%d at %v", f, e.Shard, e.Seq, e.Index, e.Time, p.seq, p.index, p.time)
		}
		lastAt[e.Shard] = at{e.Seq, e.Index, e.Time}
	}
	n := 0
	for id, e := range w.acked {
		if inFeed(f, e) {
			n++
			if _, ok := seen[id]; !ok {
				t.Fatalf("%s: acknowledged %s v%d (%s) never came", f, e.Stream, e.Version, id)
			}
		}
	}
	var prev time.Time
	for p, m := range marks {
		if m.complete.Before(prev) {
			t.Fatalf("%s: page %d: CompleteUpTo went back from %v to %v", f, p, prev, m.complete)
		}
		prev = m.complete
		for i, e := range got[m.events:] {
			if !e.Time.After(m.complete) {
				t.Fatalf("%s: page %d said complete up to %v, yet event %d (%s v%d at %v) came later",
					f, p, m.complete, m.events+i, e.Stream, e.Version, e.Time)
			}
		}
	}
	t.Logf("%s: %d events (%d acknowledged), %d pages", f, len(got), n, len(marks))
}

// Readers follow the all, a category and a type feed page by page (through
// tokens, as HTTP clients do) while appenders write; at the end each feed
// holds every acknowledged event exactly once. Small segments: the logs
// cross several.
func TestExactlyOnceWhileAppending(t *testing.T) {
	const shards = 4
	o := newKeyspace(t, shards, 20)
	s := openStore(t, o)
	r := newReader(t, o, feeds.Options{})
	w := &written{acked: map[uuid.UUID]log.RecordedEvent{}, maybe: map[uuid.UUID]bool{}}
	// One commit in every shard first: CompleteUpTo then promises about
	// every shard (a shard without commits constrains nothing).
	for sh := 0; sh < shards; sh++ {
		stream := streamOnShard("seed", sh, shards)
		req := log.AppendRequest{Stream: log.StreamID(stream)}
		res := mustAppend(t, s, stream, "A")
		req.Events = []log.ProposedEvent{{ID: res.Events[0].ID, Type: "A"}}
		w.add(req, res, nil)
	}

	const appenders, perAppender = 6, 40
	var done atomic.Bool
	var during atomic.Int64 // pages with events read while appends ran
	var wg sync.WaitGroup
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(a), 7))
			for i := 0; i < perAppender; i++ {
				stream := fmt.Sprintf("cat%d-%d", rng.IntN(3), rng.IntN(12))
				types := make([]string, 1+rng.IntN(3))
				for j := range types {
					types[j] = string(rune('A' + rng.IntN(3)))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				req := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any}
				for _, typ := range types {
					req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: typ, Data: []byte(`{}`)})
				}
				res, err := s.Append(ctx, req)
				cancel()
				if err != nil {
					t.Logf("append to %s: %v", stream, err)
				}
				w.add(req, res, err)
			}
		}()
	}

	fs := []struct {
		feed  log.Feed
		limit int
	}{{log.AllFeed, 13}, {log.CategoryFeed("cat1"), 5}, {log.TypeFeed("B"), 4}}
	got := make([][]feeds.Event, len(fs))
	marks := make([][]pageMark, len(fs))
	var rwg sync.WaitGroup
	for i, f := range fs {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			token := ""
			for n := 0; n < 100_000; n++ {
				finished := done.Load()
				after, err := r.Decode(token, f.feed.String())
				if err != nil {
					t.Errorf("%s: decode our own token: %v", f.feed, err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				p, err := r.Read(ctx, feeds.Request{Feed: f.feed, After: after, Limit: f.limit})
				cancel()
				if err != nil {
					t.Errorf("%s: read: %v", f.feed, err)
					return
				}
				if len(p.Events) > f.limit {
					t.Errorf("%s: %d events, limit %d", f.feed, len(p.Events), f.limit)
					return
				}
				got[i] = append(got[i], p.Events...)
				if !finished && len(p.Events) > 0 {
					during.Add(1)
				}
				marks[i] = append(marks[i], pageMark{events: len(got[i]), complete: p.CompleteUpTo})
				if finished && p.AtEnd {
					return
				}
				token = r.Encode(p.Next, f.feed.String())
				if len(p.Events) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			t.Errorf("%s: never reached the end", f.feed)
		}()
	}
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	if t.Failed() {
		return
	}
	if during.Load() == 0 {
		t.Fatal("no page with events was read while the appends ran: nothing concurrent was tested")
	}
	t.Logf("%d pages with events read while appending", during.Load())
	if len(w.acked) < appenders*perAppender {
		t.Fatalf("only %d events acknowledged", len(w.acked))
	}
	for i, f := range fs {
		checkFeed(t, f.feed, shards, got[i], marks[i], w)
	}
	// Another reader from the start, in one go, agrees.
	all, _ := readToEnd(t, r, feeds.Request{Feed: log.AllFeed, Limit: 10_000})
	checkFeed(t, log.AllFeed, shards, all, nil, w)
	if len(all) != len(got[0]) {
		t.Fatalf("one read: %d events; page by page: %d", len(all), len(got[0]))
	}
}
