package shardstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// The store serves the feeds of its shard logs through log.FeedStore:
// tokens it issued read on exactly, tokens of another feed or altered ones
// are invalid_position, FeedEnd is where only new commits follow, and a
// commit here wakes a feed watcher.
func TestFeedStore(t *testing.T) {
	o := newKeyspace(t, 3)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	var fs log.FeedStore = s
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for i := range 6 {
		if _, err := appendN(ctx, s, []string{"fa-1", "fb-1", "fa-2"}[i%3], log.Any, 2); err != nil {
			t.Fatal(err)
		}
	}
	read := func(r log.FeedRead) log.FeedPage {
		t.Helper()
		p, err := fs.ReadFeed(ctx, r)
		if err != nil {
			t.Fatalf("read %s after %q: %v", r.Feed, r.After, err)
		}
		return p
	}
	all := read(log.FeedRead{Feed: log.AllFeed, Limit: 100})
	if len(all.Events) != 12 || !all.AtEnd || all.CompleteUpTo.IsZero() {
		t.Fatalf("all: %d events, at end %v, complete up to %v", len(all.Events), all.AtEnd, all.CompleteUpTo)
	}
	versions := map[log.StreamID]int64{}
	for _, e := range all.Events {
		if e.Version != versions[e.Stream]+1 {
			t.Fatalf("%s@%d after version %d", e.Stream, e.Version, versions[e.Stream])
		}
		versions[e.Stream] = e.Version
	}

	t.Run("ReadOn", func(t *testing.T) {
		for i, e := range all.Events {
			p := read(log.FeedRead{Feed: log.AllFeed, After: e.Position, Limit: 100})
			if len(p.Events) != len(all.Events)-i-1 {
				t.Fatalf("after event %d: %d events, want %d", i, len(p.Events), len(all.Events)-i-1)
			}
			for j, got := range p.Events {
				if want := all.Events[i+1+j]; got.ID != want.ID || got.Position != want.Position {
					t.Fatalf("after event %d, event %d: %s %q, want %s %q", i, j, got.ID, got.Position, want.ID, want.Position)
				}
			}
		}
		if p := read(log.FeedRead{Feed: log.AllFeed, After: all.Next}); len(p.Events) != 0 || !p.AtEnd {
			t.Fatalf("after next: %d events", len(p.Events))
		}
		cat := read(log.FeedRead{Feed: log.CategoryFeed("fa"), Limit: 100})
		if len(cat.Events) != 8 {
			t.Fatalf("category fa: %d events, want 8", len(cat.Events))
		}
	})

	t.Run("ErrInvalidPosition", func(t *testing.T) {
		cat := read(log.FeedRead{Feed: log.CategoryFeed("fa"), Limit: 1})
		tok := all.Events[3].Position
		for name, r := range map[string]log.FeedRead{
			"OtherFeed":     {Feed: log.CategoryFeed("fa"), After: tok},
			"OtherCategory": {Feed: log.CategoryFeed("fb"), After: cat.Next},
			"Altered":       {Feed: log.AllFeed, After: tok[:len(tok)-2] + flip(tok[len(tok)-2:])},
			"Garbage":       {Feed: log.AllFeed, After: "AYCN8q3AaAF1c2VyLTQy"},
		} {
			_, err := fs.ReadFeed(ctx, r)
			var ve *log.ValidationError
			if !errors.As(err, &ve) || ve.Code != log.CodeInvalidPosition {
				t.Fatalf("%s: %v, want invalid_position", name, err)
			}
		}
	})

	t.Run("End", func(t *testing.T) {
		end, err := fs.FeedEnd(ctx, log.TypeFeed("Tested"))
		if err != nil {
			t.Fatal(err)
		}
		if p := read(log.FeedRead{Feed: log.TypeFeed("Tested"), After: end}); len(p.Events) != 0 || !p.AtEnd {
			t.Fatalf("from the end: %d events", len(p.Events))
		}
		wake, stop := s.WatchFeeds()
		defer stop()
		res, err := appendN(ctx, s, "fc-1", log.Any, 1)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
		case <-time.After(5 * time.Second):
			t.Fatal("a commit here did not wake the feed watcher")
		}
		p := read(log.FeedRead{Feed: log.TypeFeed("Tested"), After: end})
		if len(p.Events) != 1 || p.Events[0].ID != res.Events[0].ID {
			t.Fatalf("from the end: %d events, want the one appended since", len(p.Events))
		}
	})
}

// flip changes every character of s to another of the token alphabet.
func flip(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}
