package clienttest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// feedServer is the real API over a store with fast feeds, on an address
// that survives Restart.
type feedServer struct {
	URL  string
	opts cassandra.Options
	addr string

	mu    sync.Mutex
	ts    *httptest.Server
	store *shardstore.Store
}

// MustFeedServer starts a feedServer in a fresh keyspace (dropped when the
// test ends). Feed reads and subscriptions read 3 events at a time, so
// they span several reads.
func MustFeedServer(tb testing.TB) *feedServer {
	tb.Helper()
	o := cassandratest.NewKeyspace(tb, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &feedServer{opts: o, addr: l.Addr().String(), URL: "http://" + l.Addr().String()}
	s.start(tb, l)
	tb.Cleanup(s.stop)
	return s
}

// start opens a store and serves it on l.
func (s *feedServer) start(tb testing.TB, l net.Listener) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := s.opts
	o.Registerer = reg
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	api, err := httpapi.New(store, httpapi.Config{
		Registry:      reg,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		SubscribePoll: 100 * time.Millisecond,
		Heartbeat:     time.Second,
		FeedPageSize:  3,
	})
	if err != nil {
		store.Close()
		tb.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(api)
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	s.mu.Lock()
	s.ts, s.store = ts, store
	s.mu.Unlock()
}

// stop cuts every connection and closes the server and its store: a
// crashed instance, as its clients see it.
func (s *feedServer) stop() {
	s.mu.Lock()
	ts, store := s.ts, s.store
	s.ts, s.store = nil, nil
	s.mu.Unlock()
	if ts == nil {
		return
	}
	ts.CloseClientConnections()
	ts.Close()
	store.Close()
}

// Restart stops the server and starts a new one (new store, new API) on
// the same keyspace and address.
func (s *feedServer) Restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.start(tb, l)
}

// mustAppendFeed appends one event of type typ to stream per data value
// and returns the result.
func mustAppendFeed(tb testing.TB, c *client.Client, stream, typ string, n int) *client.AppendResult {
	tb.Helper()
	evs := make([]client.EventData, n)
	for i := range evs {
		evs[i] = client.EventData{Type: typ, Data: map[string]int{"i": i}}
	}
	res, err := c.Append(ctx(tb), stream, client.Any, evs...)
	if err != nil {
		tb.Fatal(err)
	}
	if res.Time.IsZero() {
		tb.Fatalf("append to %s: no commit time in %+v", stream, res)
	}
	return res
}

type feedKey struct {
	stream  string
	version int64
}

// wantFeed lists the events of appends, in no particular order.
func wantFeed(results ...*client.AppendResult) map[feedKey]string {
	m := map[feedKey]string{}
	for _, r := range results {
		for _, e := range r.Events {
			m[feedKey{r.Stream, e.Version}] = e.ID.String()
		}
	}
	return m
}

// checkFeedEvents asserts got holds each event of want once and nothing
// else, each stream's events in version order (positions are opaque to
// the client: the server's tests check the order across streams).
func checkFeedEvents(tb testing.TB, got []client.FeedEvent, want map[feedKey]string) {
	tb.Helper()
	seen := map[feedKey]bool{}
	last := map[string]int64{}
	for _, e := range got {
		k := feedKey{e.Stream, e.Version}
		id, ok := want[k]
		switch {
		case seen[k]:
			tb.Fatalf("%s@%d twice", e.Stream, e.Version)
		case !ok:
			tb.Fatalf("unexpected event %s@%d", e.Stream, e.Version)
		case id != e.ID.String():
			tb.Fatalf("%s@%d has id %s, want %s", e.Stream, e.Version, e.ID, id)
		case e.Position == "" || e.Time.IsZero():
			tb.Fatalf("%s@%d without position or time: %+v", e.Stream, e.Version, e)
		case e.Version <= last[e.Stream]:
			tb.Fatalf("%s@%d after version %d", e.Stream, e.Version, last[e.Stream])
		}
		seen[k], last[e.Stream] = true, e.Version
	}
	if len(seen) != len(want) {
		tb.Fatalf("%d of %d events", len(seen), len(want))
	}
}

// readFeedUntil pages through feed from from to the end of the shard
// logs (an empty page), which holds every event acknowledged before the
// call — so every event committed by the time the callers pass.
func readFeedUntil(tb testing.TB, c *client.Client, feed, from string, _ time.Time) ([]client.FeedEvent, string) {
	tb.Helper()
	var out []client.FeedEvent
	for {
		p, err := c.ReadFeed(ctx(tb), feed, from, 2)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, p.Events...)
		from = p.Next
		if len(p.Events) == 0 {
			return out, from
		}
	}
}

// collectFeed runs a catch-up iterator to its end.
func collectFeed(seq func(func(client.FeedEvent, error) bool)) ([]client.FeedEvent, error) {
	var out []client.FeedEvent
	for ev, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func TestReadFeed(t *testing.T) {
	srv := MustFeedServer(t)
	c := MustClient(t, srv.URL)
	u1 := mustAppendFeed(t, c, "user-1", "Created", 2)
	o1 := mustAppendFeed(t, c, "order-1", "Created", 1)
	u2 := mustAppendFeed(t, c, "user-2", "Renamed", 2)

	got, next := readFeedUntil(t, c, client.AllFeed, "", u2.Time)
	checkFeedEvents(t, got, wantFeed(u1, o1, u2))
	if next == "" || !got[0].Time.Equal(u1.Time) {
		t.Fatalf("next %q, first event at %v (appended at %v)", next, got[0].Time, u1.Time)
	}
	got, _ = readFeedUntil(t, c, client.CategoryFeed("user"), "", u2.Time)
	checkFeedEvents(t, got, wantFeed(u1, u2))
	got, _ = readFeedUntil(t, c, client.TypeFeed("Created"), "", u2.Time)
	checkFeedEvents(t, got, wantFeed(u1, o1))

	p, err := c.ReadFeed(ctx(t), client.AllFeed, next, 0)
	if err != nil || len(p.Events) != 0 || p.Next == "" {
		t.Fatalf("read on from the end: %+v %v", p, err)
	}
	for _, tc := range []struct{ feed, from, code string }{
		{"bogus", "", client.CodeInvalidFeed},
		{"category/a-b", "", client.CodeInvalidFeed},
		{client.AllFeed, "not-a-token", client.CodeInvalidPosition},
	} {
		var pr *client.Problem
		if _, err := c.ReadFeed(ctx(t), tc.feed, tc.from, 0); !errors.As(err, &pr) || pr.Code != tc.code {
			t.Fatalf("ReadFeed(%q, %q): %v, want %s", tc.feed, tc.from, err, tc.code)
		}
	}
}

func TestFeed(t *testing.T) {
	srv := MustFeedServer(t)
	c := MustClient(t, srv.URL)
	var res []*client.AppendResult
	for _, s := range []string{"cart-1", "cart-2", "shop-1"} {
		res = append(res, mustAppendFeed(t, c, s, "Added", 3))
	}
	all, end := readFeedUntil(t, c, client.AllFeed, "", res[2].Time)

	t.Run("CatchUp", func(t *testing.T) {
		got, err := collectFeed(c.Feed(ctx(t), client.AllFeed, client.FeedOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		checkFeedEvents(t, got, wantFeed(res...))
		// A position is bound to the feed it was read from: resume the
		// category feed from one of its own.
		cart, _ := readFeedUntil(t, c, client.CategoryFeed("cart"), "", res[1].Time)
		got, err = collectFeed(c.Feed(ctx(t), client.CategoryFeed("cart"), client.FeedOptions{From: cart[2].Position}))
		if err != nil {
			t.Fatal(err)
		}
		checkFeedEvents(t, append(cart[:3:3], got...), wantFeed(res[0], res[1]))
		got, err = collectFeed(c.Feed(ctx(t), client.AllFeed, client.FeedOptions{From: end}))
		if err != nil || len(got) != 0 {
			t.Fatalf("from the end: %d events, %v", len(got), err)
		}
		got, err = collectFeed(c.Feed(ctx(t), client.AllFeed, client.FeedOptions{From: client.FromNow}))
		if err != nil || len(got) != 0 {
			t.Fatalf("from now: %d events, %v", len(got), err)
		}
	})

	t.Run("ResumesAfterACut", func(t *testing.T) {
		// Every stream response is cut after 4 lines: 9 events take three
		// connections, each resuming after the last event yielded.
		p := MustProxy(t, srv.URL)
		p.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			p.ForwardCut(w, r, 4, nil)
			return true
		})
		got, err := collectFeed(MustClient(t, p.URL).Feed(ctx(t), client.AllFeed, client.FeedOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		checkFeedEvents(t, got, wantFeed(res...))
		reqs, _ := p.Requests()
		if len(reqs) != 3 || reqs[1].URL.Query().Get("from") != all[3].Position || reqs[2].URL.Query().Get("from") != all[7].Position {
			t.Fatalf("%d requests; want 3, resuming after events 4 and 8", len(reqs))
		}
	})

	t.Run("InvalidFeedEnds", func(t *testing.T) {
		_, err := collectFeed(c.Feed(ctx(t), client.TypeFeed("bad type"), client.FeedOptions{}))
		var pr *client.Problem
		if !errors.As(err, &pr) || pr.Code != client.CodeInvalidFeed {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSubscribeFeed(t *testing.T) {
	srv := MustFeedServer(t)
	c := MustClient(t, srv.URL)

	t.Run("CatchUpThenLive", func(t *testing.T) {
		first := mustAppendFeed(t, c, "live-1", "Tick", 4)
		sctx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		// The second append is made once the first four events arrived,
		// so its events can only come live.
		var second *client.AppendResult
		var got []client.FeedEvent
		for ev, err := range c.SubscribeFeed(sctx, client.CategoryFeed("live"), client.FeedOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, ev); len(got) == 4 {
				second = mustAppendFeed(t, c, "live-2", "Tick", 2)
			}
			if len(got) == 6 {
				break
			}
		}
		checkFeedEvents(t, got, wantFeed(first, second))
	})

	t.Run("ResumesAcrossARestart", func(t *testing.T) {
		before := mustAppendFeed(t, c, "boot-1", "Boot", 3)
		sctx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		var (
			got   []client.FeedEvent
			after *client.AppendResult
		)
		for ev, err := range c.SubscribeFeed(sctx, client.TypeFeed("Boot"), client.FeedOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			if len(got) == 2 {
				// The server dies mid-catch-up and comes back as a new
				// instance; the events appended to it follow the rest.
				srv.Restart(t)
				after = mustAppendFeed(t, c, "boot-2", "Boot", 2)
			}
			if len(got) == 5 {
				break
			}
		}
		checkFeedEvents(t, got, wantFeed(before, after))
	})

	t.Run("FromNowSurvivesACutBeforeTheFirstEvent", func(t *testing.T) {
		// The first connection learns where "now" is, then is cut before
		// any event, while an event commits and the watermark passes it.
		// The client must resume from the position the server resolved:
		// a new "now" would be past that event.
		type first struct {
			resolved string
			missed   *client.AppendResult
			err      error
		}
		firstc := make(chan first, 1)
		p := MustProxy(t, srv.URL)
		p.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n > 1 {
				return false
			}
			var f first
			defer func() { firstc <- f; Drop() }()
			out, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), nil)
			out.Header = r.Header.Clone()
			res, err := http.DefaultTransport.RoundTrip(out)
			if f.err = err; err != nil {
				return true
			}
			defer res.Body.Close()
			for k, v := range res.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(res.StatusCode)
			w.(http.Flusher).Flush()
			f.resolved = res.Header.Get("Eventlog-From")
			if f.missed, f.err = c.Append(r.Context(), "now-1", client.Any, client.EventData{Type: "Now", Data: 1}); f.err != nil {
				return true
			}
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				page, err := c.ReadFeed(r.Context(), client.TypeFeed("Now"), f.resolved, 0)
				if f.err = err; err != nil || len(page.Events) > 0 {
					return true // in the feed: a new "now" would be past it
				}
			}
			f.err = errors.New("the event did not reach the feed")
			return true
		})
		sctx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		got := collectLive(t, MustClient(t, p.URL).SubscribeFeed(sctx, client.TypeFeed("Now"), client.FeedOptions{From: client.FromNow}), 1, 30*time.Second)
		f := <-firstc
		if f.err != nil || f.resolved == "" {
			t.Fatalf("first connection: resolved %q, %v", f.resolved, f.err)
		}
		checkFeedEvents(t, got, wantFeed(f.missed))
		if reqs, _ := p.Requests(); len(reqs) < 2 || reqs[0].URL.Query().Get("from") != "now" || reqs[1].URL.Query().Get("from") != f.resolved {
			t.Fatalf("%d requests; want from=now, then from the resolved %q", len(reqs), f.resolved)
		}
	})

	t.Run("InvalidPositionEnds", func(t *testing.T) {
		for _, err := range c.SubscribeFeed(ctx(t), client.AllFeed, client.FeedOptions{From: "garbage"}) {
			var pr *client.Problem
			if !errors.As(err, &pr) || pr.Code != client.CodeInvalidPosition {
				t.Fatalf("got %v", err)
			}
		}
	})
}
