package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// slowFeedReads is the real store, each feed page read taking delay more:
// a scan of a long log.
type slowFeedReads struct {
	*shardstore.Store
	delay time.Duration
}

func (s *slowFeedReads) ReadFeed(ctx context.Context, r log.FeedRead) (log.FeedPage, error) {
	time.Sleep(s.delay)
	return s.Store.ReadFeed(ctx, r)
}

// TestFeedSubscribeScanReportsProgress: a subscription to a rare type
// catching up over a long stretch of other events (pages that select
// nothing, each moving the position) is not silent for the whole scan:
// every Heartbeat it sends an SSE id of where it is, so the connection
// stays open behind proxies and a reconnection resumes past what was
// scanned instead of scanning it all again.
func TestFeedSubscribeScanReportsProgress(t *testing.T) {
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits = testLimits
		so.Cassandra.Registerer = reg
		so.Feeds.ScanRows = 4 // a page passes 4 log rows
	})
	ts := startServer(t, store, opts, reg, func(s log.Store) log.Store {
		return &slowFeedReads{Store: s.(*shardstore.Store), delay: 200 * time.Millisecond}
	}, func(c *httpapi.Config) {
		c.Heartbeat = 300 * time.Millisecond
		c.SubscribePoll = 100 * time.Millisecond
	})
	for i := range 60 { // 60 log rows: 15 pages, 3 s at least
		ts.mustPost(t, fmt.Sprintf("common-%d", i), "Common", 1)
	}
	rare := ts.mustPost(t, "rare-1", "Rare", 1)

	sub := subscribe(t, ts, "/v1/feeds/type/Rare/subscribe")
	var progress []string
	for {
		m := sub.nextEvent(t)
		if m.data == "" {
			if m.hasID {
				progress = append(progress, m.id)
			}
			continue
		}
		if e := feedMsg(t, m); e.Stream != "rare-1" {
			t.Fatalf("got %s version %d, want rare-1", e.Stream, e.Version)
		}
		break
	}
	sub.cancel()
	if len(progress) == 0 {
		t.Fatalf("no position came in the scan of 60 rows before the event (heartbeat %v, a page of 4 rows every 200 ms or more)", 300*time.Millisecond)
	}
	// A reconnection from the last position reported resumes past the
	// rows scanned, and misses nothing.
	sub = subscribe(t, ts, "/v1/feeds/type/Rare/subscribe", "Last-Event-ID", progress[len(progress)-1])
	checkFeed(t, "resumed type/Rare", []feedEventJSON{sub.nextFeedEvent(t)}, rare)
}
