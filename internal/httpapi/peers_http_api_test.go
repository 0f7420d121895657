package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/prometheus/client_golang/prometheus"
)

// httpInstance is an instance on o's keyspace (migrated already) that
// forwards appends and flushes to the others over HTTP, as cmd/server
// wires them, with API keys required.
func httpInstance(tb testing.TB, o shardstore.Options, mod func(*httpapi.Config)) *authServer {
	tb.Helper()
	return httpInstanceVia(tb, o, nil, mod)
}

// httpInstanceVia is httpInstance sending its requests to the other
// instances through rt (nil: the default transport).
func httpInstanceVia(tb testing.TB, o shardstore.Options, rt http.RoundTripper, mod func(*httpapi.Config)) *authServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	o.Cassandra.Registerer = reg
	var opened *shardstore.Store
	peers := httpapi.Peers{Client: &http.Client{Transport: rt, Timeout: 10 * time.Second}, Key: func() []byte {
		if opened == nil {
			return nil
		}
		return opened.PeerKey()
	}}
	o.Address = httpapi.PeerAddress(ln.Addr().String(), false)
	o.Forward, o.FlushRemote = httpapi.Forwarder(peers), httpapi.FlushForwarder(peers)
	o.Instance = ""
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	opened = store
	tb.Cleanup(store.Close)
	ks, err := keystore.New(cassandratest.Session(tb, o.Cassandra), o.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{})
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	cfg := httpapi.Config{Limits: testLimits, Registry: reg, Auth: a, Keys: ks}
	if mod != nil {
		mod(&cfg)
	}
	api, err := httpapi.New(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(spectest.Handler(tb, api))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(srv.Close)
	return &authServer{testServer: &testServer{Server: srv, Store: store, Opts: o, API: api}, Keys: ks, Auth: a}
}

// ownedStream waits until owner holds some shard and returns a stream of
// it, named from prefix.
func ownedStream(tb testing.TB, owner *shardstore.Store, shards int, prefix string) string {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		owned := owner.Owned()
		for i := range 1000 {
			s := prefix + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
			if slices.Contains(owned, partition.ShardOf(s, shards)) {
				return s
			}
		}
	}
	tb.Fatal("the instance owns no shard")
	return ""
}

// TestSubscribeSeesAppendsElsewhereWithAuth: with API keys required, a
// live subscription on an instance that does not own the stream's shard
// still sees the appends made through its owner. Its shared poller reads
// the stream's head with no client's request behind it; the owner must
// not refuse the flush that read asks for.
func TestSubscribeSeesAppendsElsewhereWithAuth(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	o := base.Opts
	a := httpInstance(t, o, func(c *httpapi.Config) { c.SubscribePoll = 100 * time.Millisecond })
	// base's store claimed the shards first: close it so that a takes them.
	base.Store.Close()
	stream := ownedStream(t, a.Store, o.Cassandra.Shards, "polled")
	b := httpInstance(t, o, func(c *httpapi.Config) { c.SubscribePoll = 100 * time.Millisecond })
	if err := b.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
		t.Skip("b took the stream's shard")
	}
	if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":1}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append through the owner: %s", r)
	}
	sub := subscribe(t, b.testServer, "/v1/streams/"+stream+"/subscribe", "Accept", "application/x-ndjson", "Authorization", root)
	if m := sub.nextEvent(t); m.event.Version != 1 {
		t.Fatalf("got %+v, want version 1", m.event)
	}
	if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":2}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append through the owner: %s", r)
	}
	if m := sub.nextEvent(t); m.event.Version != 2 {
		t.Fatalf("got %+v, want version 2", m.event)
	}
}

// TestForwardedAppendRetriedAtOwner: an append taken by an instance that
// does not own its stream's shard is stored as sent, so its retry sent to
// the owner itself is recognised as the same append (200, duplicate), and
// a read returns the payload's bytes as sent.
func TestForwardedAppendRetriedAtOwner(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	o := base.Opts
	a := httpInstance(t, o, nil)
	base.Store.Close()
	stream := ownedStream(t, a.Store, o.Cassandra.Shards, "fwd")
	b := httpInstance(t, o, nil)
	for _, x := range []*authServer{a, b} {
		if err := x.Auth.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
		t.Skip("b took the stream's shard")
	}
	body := `{"events":[{"id":"0191e3a0-0000-7000-8000-000000000001","type":"t","data":{"url":"https://x.example/?a=1&b=<2>"}}]}`
	if r := b.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append through a non-owner: %s", r)
	}
	if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusOK {
		t.Fatalf("its retry at the owner: %s, want 200 (duplicate)", r)
	}
	r := a.As(t, root, "GET", "/v1/streams/"+stream+"/events", "")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"data":{"url":"https://x.example/?a=1&b=<2>"}`) {
		t.Fatalf("read: %s", r)
	}
}
