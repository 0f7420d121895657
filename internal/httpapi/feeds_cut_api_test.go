package httpapi_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// TestFeedPageCutKeepsCompleteUpTo: a JSON feed page that the HTTP layer
// ends early at MaxPageBytes (its encoded events outweigh the store's
// estimate: with 64 shards a position token alone is over 100 bytes)
// answers a complete_up_to that no later page contradicts: every event
// read on from its next is after it.
func TestFeedPageCutKeepsCompleteUpTo(t *testing.T) {
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Shards = 64
		so.Cassandra.Limits = testLimits
		so.Cassandra.Registerer = reg
	})
	ts := startServer(t, store, opts, reg, nil, func(c *httpapi.Config) { c.MaxPageBytes = 1500 })
	for i := range 24 {
		ts.mustPost(t, fmt.Sprintf("cut-%d", i), "Cut", 1)
	}
	time.Sleep(1500 * time.Millisecond) // every idle shard's floor raised past the events
	type pageSeen struct {
		complete time.Time
		events   int
	}
	var (
		pages []pageSeen
		from  string
		total int
	)
	for len(pages) < 100 {
		p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?limit=100&from="+from, nil))
		for _, e := range p.Events {
			at, err := time.Parse(time.RFC3339Nano, e.Time)
			if err != nil {
				t.Fatal(err)
			}
			for i, pg := range pages {
				if !at.After(pg.complete) {
					t.Fatalf("event %s v%d committed at %s came in page %d, after page %d (%d events) answered complete_up_to %s",
						e.Stream, e.Version, e.Time, len(pages), i, pg.events, pg.complete.Format(time.RFC3339Nano))
				}
			}
		}
		t.Logf("page %d: %d events, complete_up_to %s", len(pages), len(p.Events), p.CompleteUpTo)
		total += len(p.Events)
		cut, err := time.Parse(time.RFC3339Nano, p.CompleteUpTo)
		if err != nil {
			t.Fatalf("complete_up_to %q: %v", p.CompleteUpTo, err)
		}
		pages = append(pages, pageSeen{complete: cut, events: len(p.Events)})
		from = p.Next
		if len(p.Events) == 0 {
			break
		}
	}
	if total != 24 {
		t.Fatalf("read %d events, want 24", total)
	}
}
