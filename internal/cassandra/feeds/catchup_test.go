package feeds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// TestCatchUpRate rebuilds a projection's view of the all feed from the
// start and logs the rate (no assertion on speed, only on the count).
// EVENTLOG_FEEDS_CATCHUP_EVENTS sets the events (default 50,000; 5,000
// with -short), EVENTLOG_FEEDS_CATCHUP_PER_APPEND the events per append
// (default 50; concurrent appends share log rows).
func TestCatchUpRate(t *testing.T) {
	total := 50_000
	if testing.Short() {
		total = 5_000
	}
	if v := os.Getenv("EVENTLOG_FEEDS_CATCHUP_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EVENTLOG_FEEDS_CATCHUP_EVENTS=%q", v)
		}
		total = n
	}
	perAppend := 50
	if v := os.Getenv("EVENTLOG_FEEDS_CATCHUP_PER_APPEND"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("EVENTLOG_FEEDS_CATCHUP_PER_APPEND=%q", v)
		}
		perAppend = n
	}
	o := newKeyspace(t, 8, 1000)
	s := openStore(t, o)
	const writers = 16
	data := json.RawMessage(`{"amount":1234,"currency":"EUR","note":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`)
	start := time.Now()
	appendAll(t, s, writers, (total+perAppend-1)/perAppend, func(i int) log.AppendRequest {
		req := log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("acct-%d", i%500)), Expected: log.Any}
		for j := 0; j < perAppend && i*perAppend+j < total; j++ {
			req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), Type: "Booked", Data: data})
		}
		return req
	})
	t.Logf("wrote %d events in %v", total, time.Since(start).Round(time.Millisecond))

	for _, limit := range []int{1000, 10_000} {
		r := newReader(t, o, feeds.Options{})
		start = time.Now()
		req := feeds.Request{Feed: log.AllFeed, Limit: limit}
		n, pages := 0, 0
		rows := map[[2]int64]bool{}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			p, err := r.Read(ctx, req)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Events)
			pages++
			for _, e := range p.Events {
				rows[[2]int64{int64(e.Shard), e.Seq}] = true
			}
			if p.AtEnd {
				break
			}
			req.After = p.Next
		}
		d := time.Since(start)
		if n != total {
			t.Fatalf("limit %d: caught up %d events, want %d", limit, n, total)
		}
		t.Logf("catch-up of the all feed, pages of %d: %d events (%d log rows) in %d pages, %v: %.0f events/s",
			limit, n, len(rows), pages, d.Round(time.Millisecond), float64(n)/d.Seconds())
	}
}
