package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestPollerOutlivesASubscribersKey: the shared poller of a stream reads
// its head (a flush at the owner, with a subscriber's token) for every
// subscriber of the stream on the instance. A subscriber whose key
// expired while it stays connected must not stop the others from seeing
// appends made through other instances.
func TestPollerOutlivesASubscribersKey(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	short := base.MustToken(t, "short", 3*time.Second, "read:*")
	o := base.Opts
	poll := func(c *httpapi.Config) { c.SubscribePoll, c.Heartbeat = 100*time.Millisecond, time.Second }
	a := httpInstance(t, o, poll)
	base.Store.Close() // so that a and b share the shards
	b := httpInstance(t, o, poll)
	for _, in := range []*authServer{a, b} {
		if err := in.Auth.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Once the shards are shared out, a stream of one of a's: appends
	// through a are committed there, and b sees them only by polling.
	for deadline := time.Now().Add(time.Minute); len(a.Store.Owned())+len(b.Store.Owned()) != o.Cassandra.Shards || len(b.Store.Owned()) != o.Cassandra.Shards/2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shards not shared out after a minute: a %v, b %v", a.Store.Owned(), b.Store.Owned())
		}
	}
	stream := ownedStream(t, a.Store, o.Cassandra.Shards, "keyed")
	if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
		t.Fatalf("b owns the shard of %s too", stream)
	}
	appendThroughOwner := func(data string) {
		t.Helper()
		if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":`+data+`}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append through the owner: %s", r)
		}
	}
	appendThroughOwner("1")
	sub := subscribe(t, b.testServer, "/v1/streams/"+stream+"/subscribe", "Accept", "application/x-ndjson", "Authorization", root)
	if m := sub.nextEvent(t); m.event.Version != 1 {
		t.Fatalf("got %+v, want version 1", m.event)
	}
	// The newest subscriber, whose key expires while it waits.
	late := subscribe(t, b.testServer, "/v1/streams/"+stream+"/subscribe", "Accept", "application/x-ndjson", "Authorization", short)
	if m := late.nextEvent(t); m.event.Version != 1 {
		t.Fatalf("late: got %+v, want version 1", m.event)
	}
	time.Sleep(4 * time.Second) // short has expired
	appendThroughOwner("2")
	if m := sub.nextEvent(t); m.event.Version != 2 {
		t.Fatalf("got %+v, want version 2", m.event)
	}
}
