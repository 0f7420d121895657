package feeds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// fetchPanics panics on the fetch of shard 1 (a read's helper goroutine).
func fetchPanics(shard int) {
	if shard == 1 {
		panic("fetch bug")
	}
}

// TestFetchPanicIsTheReaders: a panic on a shard's fetch goroutine is
// raised again on the goroutine that reads (Read; Pages' Next or Close),
// with the fetch's stack, after the other fetches have stopped. It ended
// the process (the test binary crashed): no recover of the reader's, the
// HTTP layer's that answers 500, reaches another goroutine.
func TestFetchPanicIsTheReaders(t *testing.T) {
	o := newKeyspace(t, 3, 16)
	s := openStore(t, o)
	r := newReader(t, o, feeds.Options{})
	for shard := range 3 {
		mustAppend(t, s, streamOnShard("panic", shard, 3), "X")
	}
	r.SetFetchHook(fetchPanics)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raised := func(f func()) *fanout.Panic {
		t.Helper()
		var got any
		func() {
			defer func() { got = recover() }()
			f()
		}()
		p, ok := got.(*fanout.Panic)
		if !ok || p.Value != "fetch bug" || !strings.Contains(string(p.Stack), "feeds_test.fetchPanics(") {
			t.Fatalf("raised %v; want the fetch's panic with its stack", got)
		}
		return p
	}
	t.Run("Read", func(t *testing.T) {
		raised(func() { _, _ = r.Read(ctx, feeds.Request{Feed: log.AllFeed}) })
	})
	t.Run("Pages", func(t *testing.T) {
		raised(func() {
			p, err := r.Pages(ctx, feeds.Request{Feed: log.AllFeed})
			if err != nil {
				t.Errorf("pages: %v", err)
				return
			}
			defer p.Close()
			for {
				pg, err := p.Next(100, 0)
				if err != nil || pg.AtEnd {
					t.Errorf("next: %v, at end %v; want the fetch's panic", err, pg.AtEnd)
					return
				}
			}
		})
	})
}
