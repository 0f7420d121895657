package httpapi_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// readCounter is the real store, counting the reads subscriptions make.
type readCounter struct {
	*shardstore.Store
	reads atomic.Int64
}

func (r *readCounter) Info(ctx context.Context, s log.StreamID) (log.StreamInfo, error) {
	r.reads.Add(1)
	return r.Store.Info(ctx, s)
}

func (r *readCounter) ReadStream(ctx context.Context, rr log.ReadRange, fn func(*log.RecordedEvent) error) error {
	r.reads.Add(1)
	return r.Store.ReadStream(ctx, rr, fn)
}

func (r *readCounter) ReadFeed(ctx context.Context, fr log.FeedRead) (log.FeedPage, error) {
	r.reads.Add(1)
	return r.Store.ReadFeed(ctx, fr)
}

// TestIdleSubscriptionsSharePoller: 20 idle subscribers of one stream and
// 20 of one feed cost about one store read per poll each, not one per
// subscriber; and they still get new events.
func TestIdleSubscriptionsSharePoller(t *testing.T) {
	var rc *readCounter
	ts := MustServerWrapped(t, func(s log.Store) log.Store {
		rc = &readCounter{Store: s.(*shardstore.Store)}
		return rc
	}, func(c *httpapi.Config) { c.SubscribePoll = 100 * time.Millisecond })
	ts.MustAppend(t, "idle-1", 1)

	const subs = 20
	for range subs {
		status, _, stop := openSubscription(t, ts.URL+"/v1/streams/idle-1/subscribe", "Accept", "application/x-ndjson")
		defer stop()
		status2, _, stop2 := openSubscription(t, ts.URL+"/v1/feeds/category/idle/subscribe?from=now", "Accept", "application/x-ndjson")
		defer stop2()
		if status != 200 || status2 != 200 {
			t.Fatalf("subscribe: %d %d", status, status2)
		}
	}
	time.Sleep(500 * time.Millisecond) // the catch-up reads are done
	before := rc.reads.Load()
	const idle = 2 * time.Second
	time.Sleep(idle)
	polls := int64(idle / (100 * time.Millisecond))
	got := rc.reads.Load() - before
	// Two pollers (stream, feed), each about one read per poll (a feed
	// poll that finds nothing is one read); each subscriber polling alone
	// would be 2*subs*polls = 800.
	if got > 4*polls {
		t.Fatalf("%d store reads in %v of %d idle subscriptions at a %v poll; want about %d", got, idle, 2*subs, 100*time.Millisecond, 2*polls)
	}
	t.Logf("%d store reads in %v for %d idle subscriptions", got, idle, 2*subs)

	// Still live: an append through another instance reaches a subscriber
	// by the shared poller, of the stream and of the feed (whose opaque
	// positions the poller cannot compare: it counts what it saw).
	sub := subscribe(t, ts, "/v1/streams/idle-1/subscribe", "Accept", "application/x-ndjson", "Last-Event-ID", "1")
	fsub := subscribe(t, ts, "/v1/feeds/category/idle/subscribe?from=now", "Accept", "application/x-ndjson")
	other := ts.Instance(t, nil)
	other.MustAppend(t, "idle-1", 1)
	if m := sub.nextEvent(t); m.event.Version != 2 {
		t.Fatalf("got %+v, want version 2", m.event)
	}
	if e := fsub.nextFeedEvent(t); e.Stream != "idle-1" || e.Version != 2 {
		t.Fatalf("feed: got %s version %d, want idle-1 version 2", e.Stream, e.Version)
	}
}
