package shardstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestFeedReadMaxBytes: a feed read with MaxBytes ends once its events
// reach about that many bytes (at least one event), whatever its limit,
// so a page of large events never holds much more in memory; reading on
// from each page's Next returns every event once, in order.
func TestFeedReadMaxBytes(t *testing.T) {
	o := newKeyspace(t, 3)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pad := strings.Repeat("p", 900)
	var want []string
	for i := range 7 {
		stream := fmt.Sprintf("fbig-%d", i%3)
		id := uuid.New()
		req := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any,
			Events: []log.ProposedEvent{ev(id, "Big", fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))}}
		if _, err := s.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
		want = append(want, id.String())
	}
	var got []string
	after := ""
	for range 20 {
		p, err := s.ReadFeed(ctx, log.FeedRead{Feed: log.CategoryFeed("fbig"), After: after, Limit: 100, MaxBytes: 2000})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > 2 {
			t.Fatalf("a page of %d events of ~1 KiB with MaxBytes 2000", len(p.Events))
		}
		for _, e := range p.Events {
			got = append(got, e.ID.String())
		}
		after = p.Next
		if len(p.Events) == 0 && p.AtEnd {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("event %s twice", id)
		}
		seen[id] = true
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("event %s never read", id)
		}
	}
	// Without MaxBytes the limit alone bounds the page.
	if p, err := s.ReadFeed(ctx, log.FeedRead{Feed: log.CategoryFeed("fbig"), Limit: 100}); err != nil || len(p.Events) != 7 {
		t.Fatalf("read without MaxBytes: %d events, %v", len(p.Events), err)
	}
}
