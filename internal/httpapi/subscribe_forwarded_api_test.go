package httpapi_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestSubscribeWokenByForwardedAppend: an append through this instance
// to a stream whose shard another instance owns (forwarded there and
// committed there) reaches this instance's subscribers at once, as the
// README promises for appends through the same instance, not at the next
// poll (an hour here).
func TestSubscribeWokenByForwardedAppend(t *testing.T) {
	lazy := func(c *httpapi.Config) { c.SubscribePoll = time.Hour; c.Heartbeat = time.Hour }
	a := MustFeedServer(t, lazy)
	b := a.Instance(t, lazy)
	deadline := time.Now().Add(time.Minute)
	for len(b.Store.Owned()) == 0 || len(a.Store.Owned()) == 4 {
		if time.Now().After(deadline) {
			t.Fatalf("b owns no shard after a minute (a owns %v)", a.Store.Owned())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stream := ""
	for i := 0; stream == ""; i++ {
		s := fmt.Sprintf("fwd-%d", i)
		if sh := partition.ShardOf(s, 4); slices.Contains(b.Store.Owned(), sh) && !slices.Contains(a.Store.Owned(), sh) {
			stream = s
		}
	}
	sub := subscribe(t, a, "/v1/streams/"+stream+"/subscribe")
	fsub := subscribe(t, a, "/v1/feeds/category/fwd/subscribe?from=now")
	if m := fsub.nextEvent(t); !m.hasID { // the resolved start: the subscription is following
		t.Fatalf("feed: first message %+v", m)
	}
	time.Sleep(200 * time.Millisecond) // both wait for events
	a.mustPost(t, stream, "Fwd", 1)    // forwarded to b
	if m := sub.next(t, 5*time.Second); m.event.Version != 1 {
		t.Fatalf("stream: got %+v, want version 1", m)
	}
	if e := feedMsg(t, fsub.next(t, 5*time.Second)); e.Stream != stream || e.Version != 1 {
		t.Fatalf("feed: got %s version %d, want %s version 1", e.Stream, e.Version, stream)
	}
}
