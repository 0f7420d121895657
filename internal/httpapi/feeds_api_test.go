package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// feedEventJSON is an event as a feed sends it.
type feedEventJSON struct {
	Position string          `json:"position"`
	Stream   string          `json:"stream"`
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Version  int64           `json:"version"`
	Time     string          `json:"time"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
}

type feedPageJSON struct {
	Events       []feedEventJSON `json:"events"`
	Next         string          `json:"next"`
	CompleteUpTo string          `json:"complete_up_to"`
}

// acked is an event an append acknowledged, with its commit time.
type acked struct {
	stream  string
	version int64
	id      string
	typ     string
	time    time.Time
}

type evKey struct {
	stream  string
	version int64
}

// appendResultJSON is the JSON of an append's result.
type appendResultJSON struct {
	Stream string `json:"stream"`
	Events []struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	} `json:"events"`
	Time      string `json:"time"`
	Duplicate bool   `json:"duplicate"`
}

// postEvents appends n events of type typ to stream through the server at
// base; safe on any goroutine.
func postEvents(base, stream, typ string, n int) ([]acked, error) {
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"type":%q,"data":{"i":%d}}`, typ, i))
	}
	body := `{"events":[` + strings.Join(evs, ",") + `]}`
	res, err := http.Post(base+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("append to %s: %d %s", stream, res.StatusCode, b)
	}
	var r appendResultJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	at, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil || at.IsZero() {
		return nil, fmt.Errorf("append result time %q: %v", r.Time, err)
	}
	out := make([]acked, len(r.Events))
	for i, e := range r.Events {
		out[i] = acked{stream: stream, version: e.Version, id: e.ID, typ: typ, time: at}
	}
	return out, nil
}

// mustPost is postEvents on the test goroutine.
func (ts *testServer) mustPost(tb testing.TB, stream, typ string, n int) []acked {
	tb.Helper()
	a, err := postEvents(ts.URL, stream, typ, n)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func mustFeedPage(tb testing.TB, r response) feedPageJSON {
	tb.Helper()
	return mustStrictJSON[feedPageJSON](tb, "feed read", r)
}

// readFeedUntil reads path from the position from to the end of the
// shard logs (an empty page), which holds every event acknowledged before
// the call — so every event committed by the time the callers pass; it
// returns the events and where to read on.
func (ts *testServer) readFeedUntil(tb testing.TB, path, from string, _ time.Time) ([]feedEventJSON, string) {
	tb.Helper()
	var out []feedEventJSON
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for {
		p := mustFeedPage(tb, ts.Do(tb, "GET", path+sep+"from="+from, nil))
		out = append(out, p.Events...)
		from = p.Next
		if _, err := time.Parse(time.RFC3339Nano, p.CompleteUpTo); err != nil {
			tb.Fatalf("complete_up_to %q: %v", p.CompleteUpTo, err)
		}
		if len(p.Events) == 0 {
			return out, from
		}
	}
}

// lastTime is the latest commit time of evs.
func lastTime(evs []acked) time.Time {
	var t time.Time
	for _, e := range evs {
		if e.time.After(t) {
			t = e.time
		}
	}
	return t
}

// checkFeed asserts got holds each event of want once, nothing else, in
// feed order as a reader sees it — each stream's versions rising (shards
// are merged by commit time within a read, but an event of another shard
// may come with an earlier time in a later read) — each with a position
// of its own.
func checkFeed(tb testing.TB, name string, got []feedEventJSON, want []acked) {
	tb.Helper()
	byKey := map[evKey]acked{}
	for _, a := range want {
		byKey[evKey{a.stream, a.version}] = a
	}
	seen := map[evKey]bool{}
	positions := map[string]bool{}
	lastVersion := map[string]int64{}
	for i, e := range got {
		k := evKey{e.Stream, e.Version}
		w, ok := byKey[k]
		switch {
		case seen[k]:
			tb.Fatalf("%s: %s@%d twice", name, e.Stream, e.Version)
		case !ok:
			tb.Fatalf("%s: unexpected event %s@%d", name, e.Stream, e.Version)
		case w.id != e.ID || w.typ != e.Type:
			tb.Fatalf("%s: %s@%d is %s %s, want %s %s", name, e.Stream, e.Version, e.ID, e.Type, w.id, w.typ)
		}
		seen[k] = true
		if e.Position == "" || positions[e.Position] {
			tb.Fatalf("%s: %s@%d has position %q, empty or another event's", name, e.Stream, e.Version, e.Position)
		}
		positions[e.Position] = true
		at, _ := time.Parse(time.RFC3339Nano, e.Time)
		if !at.Equal(w.time) {
			tb.Fatalf("%s: %s@%d at %s, acknowledged at %v", name, e.Stream, e.Version, e.Time, w.time)
		}
		if e.Version <= lastVersion[e.Stream] {
			tb.Fatalf("%s: out of order at %d: %s@%d after %s@%d", name, i, e.Stream, e.Version, e.Stream, lastVersion[e.Stream])
		}
		lastVersion[e.Stream] = e.Version
	}
	if len(seen) != len(byKey) {
		for k := range byKey {
			if !seen[k] {
				tb.Errorf("%s: missing %s@%d", name, k.stream, k.version)
			}
		}
		tb.Fatalf("%s: %d of %d events", name, len(seen), len(byKey))
	}
}

func filter(evs []acked, keep func(acked) bool) []acked {
	var out []acked
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// ndjsonFeed reads a feed stream: its events, headers and trailers.
func (ts *testServer) ndjsonFeed(tb testing.TB, path string) ([]feedEventJSON, *http.Response) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/x-ndjson" {
		b, _ := io.ReadAll(res.Body)
		tb.Fatalf("GET %s: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	var out []feedEventJSON
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var e feedEventJSON
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			tb.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return out, res // the trailers are set once the body is read
}

func TestFeedRead(t *testing.T) {
	ts := MustFeedServer(t, func(c *httpapi.Config) { c.FeedPageSize = 4 })
	var all []acked
	for _, a := range []struct {
		stream, typ string
		n           int
	}{{"user-1", "Created", 3}, {"user-2", "Renamed", 2}, {"order-1", "Created", 2}} {
		all = append(all, ts.mustPost(t, a.stream, a.typ, a.n)...)
	}
	last := lastTime(all)

	t.Run("AppendTime", func(t *testing.T) {
		// The append's "time" is its events' commit time as reads show it.
		p := mustPage(t, ts.Do(t, "GET", "/v1/streams/user-1/events", nil))
		if at, _ := time.Parse(time.RFC3339Nano, p.Events[0].Time); !at.Equal(all[0].time) {
			t.Fatalf("event time %s, append said %v", p.Events[0].Time, all[0].time)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		got, next := ts.readFeedUntil(t, "/v1/feeds/all?limit=3", "", last)
		checkFeed(t, "all", got, all)
		if next == "" {
			t.Fatalf("next after catching up is empty, want the end of the logs")
		}
		if p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?from="+next, nil)); len(p.Events) != 0 || p.Next == "" {
			t.Fatalf("read from the end: %d events, next %q; want none, and where to read on", len(p.Events), p.Next)
		}
		p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?limit=3", nil))
		if len(p.Events) != 3 || p.Next != p.Events[2].Position {
			t.Fatalf("a full page of 3: %d events, next %q", len(p.Events), p.Next)
		}
		p = mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?from="+p.Next, nil))
		if len(p.Events) != 4 || p.Events[0].Position != got[3].Position { // FeedPageSize is the default limit
			t.Fatalf("second page: %d events from %q", len(p.Events), p.Events[0].Position)
		}
		if p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?limit=10000", nil)); len(p.Events) != len(all) {
			t.Fatalf("limit=10000: %d events", len(p.Events))
		}
	})

	t.Run("CategoryAndType", func(t *testing.T) {
		got, _ := ts.readFeedUntil(t, "/v1/feeds/category/user", "", last)
		checkFeed(t, "category/user", got, filter(all, func(a acked) bool { return strings.HasPrefix(a.stream, "user-") }))
		got, _ = ts.readFeedUntil(t, "/v1/feeds/type/Created", "", last)
		checkFeed(t, "type/Created", got, filter(all, func(a acked) bool { return a.typ == "Created" }))
		got, _ = ts.readFeedUntil(t, "/v1/feeds/category/nobody", "", last)
		checkFeed(t, "category/nobody", got, nil)
	})

	t.Run("NDJSON", func(t *testing.T) {
		ts.readFeedUntil(t, "/v1/feeds/all", "", last) // all in the feed
		// 7 events, read 4 at a time: the stream spans reads.
		got, res := ts.ndjsonFeed(t, "/v1/feeds/all")
		checkFeed(t, "ndjson", got, all)
		next, cut := res.Trailer.Get(httpapi.HeaderFeedNext), res.Trailer.Get(httpapi.HeaderFeedCompleteUpTo)
		if _, err := time.Parse(time.RFC3339Nano, cut); err != nil {
			t.Fatalf("trailer %s = %q (%v), want a time", httpapi.HeaderFeedCompleteUpTo, cut, err)
		}
		if next == "" {
			t.Fatalf("trailer %s is empty, want where to read on", httpapi.HeaderFeedNext)
		}
		if f, ok := res.Header[httpapi.HeaderFeedFrom]; !ok || f[0] != "" {
			t.Fatalf("header %s = %v, want the start", httpapi.HeaderFeedFrom, f)
		}
		// Resume from the trailer: only what came since.
		more := ts.mustPost(t, "user-3", "Created", 2)
		ts.readFeedUntil(t, "/v1/feeds/all", next, lastTime(more))
		got, _ = ts.ndjsonFeed(t, "/v1/feeds/all?from="+next)
		checkFeed(t, "ndjson from the trailer", got, more)
		// Resume from an event's position: the events after it.
		mid, _ := ts.ndjsonFeed(t, "/v1/feeds/all")
		got, _ = ts.ndjsonFeed(t, "/v1/feeds/all?from="+mid[4].Position)
		checkFeed(t, "ndjson from a position", append(mid[:5:5], got...), append(all, more...))
		// Category and type feeds stream too.
		got, _ = ts.ndjsonFeed(t, "/v1/feeds/type/Created")
		checkFeed(t, "ndjson type", got, filter(append(all, more...), func(a acked) bool { return a.typ == "Created" }))
	})

	t.Run("FromNow", func(t *testing.T) {
		// Once every event so far is in the feed, from=now returns none
		// of them: only what commits later.
		ts.readFeedUntil(t, "/v1/feeds/all", "", time.Now())
		p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all?from=now", nil))
		if len(p.Events) != 0 || p.Next == "" {
			t.Fatalf("from=now: %d events, next %q", len(p.Events), p.Next)
		}
		got, res := ts.ndjsonFeed(t, "/v1/feeds/all?from=now")
		if len(got) != 0 || res.Header.Get(httpapi.HeaderFeedFrom) == "" {
			t.Fatalf("ndjson from=now: %d events, %s %q", len(got), httpapi.HeaderFeedFrom, res.Header.Get(httpapi.HeaderFeedFrom))
		}
		now := ts.mustPost(t, "order-2", "Shipped", 1)
		got, _ = ts.readFeedUntil(t, "/v1/feeds/all", p.Next, lastTime(now))
		checkFeed(t, "after from=now", got, now)
	})

	t.Run("Limits", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=10001", "limit=x", "limit=1&limit=2", "from=a&from=b"} {
			MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all?"+q, nil), 400, "invalid_request")
		}
	})
}

func TestFeedErrors(t *testing.T) {
	ts := MustServer(t, nil)
	for _, c := range []struct{ path, code string }{
		{"/v1/feeds/bogus", "invalid_feed"},
		{"/v1/feeds/bogus/x", "invalid_feed"},
		{"/v1/feeds/bogus/x/subscribe", "invalid_feed"},
		{"/v1/feeds/category", "invalid_feed"},
		{"/v1/feeds/type", "invalid_feed"},
		{"/v1/feeds/all/x", "invalid_feed"},
		{"/v1/feeds/category/user-1", "invalid_feed"}, // a category has no '-'
		{"/v1/feeds/category/user-1/subscribe", "invalid_feed"},
		{"/v1/feeds/type/bad%20type", "invalid_feed"},
		{"/v1/feeds/type/" + strings.Repeat("t", 201), "invalid_feed"},
		{"/v1/feeds/all?from=garbage", "invalid_position"},
		{"/v1/feeds/category/user?from=AAAA", "invalid_position"},
		{"/v1/feeds/all/subscribe?from=NOW", "invalid_position"},
		{"/v1/feeds/type/Created/subscribe?from=%2F", "invalid_position"},
		{"/v1/feeds/all?limit=-1", "invalid_request"},
	} {
		t.Run(c.path, func(t *testing.T) {
			for _, accept := range []string{"application/json", "application/x-ndjson", "text/event-stream"} {
				MustProblem(t, ts.Do(t, "GET", c.path, nil, "Accept", accept), 400, c.code)
			}
		})
	}
	t.Run("LastEventID", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all/subscribe", nil, "Last-Event-ID", "7"), 400, "invalid_position")
		// A good Last-Event-ID wins over a bad from: it is where the
		// client stopped.
		ts.mustPost(t, "lei-1", "L", 1)
		p := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/all", nil))
		sub := subscribe(t, ts, "/v1/feeds/all/subscribe?from=bad", "Last-Event-ID", p.Next)
		if sub.res.StatusCode != 200 {
			t.Fatalf("status %d", sub.res.StatusCode)
		}
	})
	t.Run("NotImplemented", func(t *testing.T) {
		// A store that reads no feeds (this wrapper hides them).
		plain := MustServerWrapped(t, func(s log.Store) log.Store { return &countingStore{Store: s} }, nil)
		for _, p := range []string{"/v1/feeds/all", "/v1/feeds/all/subscribe", "/v1/feeds/type/T", "/v1/feeds/category/c/subscribe"} {
			MustProblem(t, plain.Do(t, "GET", p, nil), 501, "not_implemented")
		}
	})
}

// feedMsg is a subscription message as a feed event (zero for a
// position-only message).
func feedMsg(tb testing.TB, m subMsg) feedEventJSON {
	tb.Helper()
	var e feedEventJSON
	if m.data == "" {
		return e
	}
	dec := json.NewDecoder(strings.NewReader(m.data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("feed message %q: %v", m.data, err)
	}
	if m.hasID && m.id != e.Position {
		tb.Fatalf("SSE id %q is not the event's position %q", m.id, e.Position)
	}
	return e
}

// nextFeedEvent reads the next event of a feed subscription, skipping
// heartbeats and position-only messages.
func (s *subscription) nextFeedEvent(tb testing.TB) feedEventJSON {
	tb.Helper()
	for {
		if e := feedMsg(tb, s.nextEvent(tb)); e.Position != "" {
			return e
		}
	}
}

func TestFeedSubscribe(t *testing.T) {
	ts := MustFeedServer(t, func(c *httpapi.Config) {
		c.SubscribePoll = 100 * time.Millisecond
		c.Heartbeat = 300 * time.Millisecond
		c.FeedPageSize = 3
	})
	before := ts.mustPost(t, "sub-1", "A", 4)
	before = append(before, ts.mustPost(t, "other-1", "B", 2)...)

	t.Run("CategorySSE", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/feeds/category/sub/subscribe")
		if ct := sub.res.Header.Get("Content-Type"); ct != "text/event-stream" || sub.res.StatusCode != 200 {
			t.Fatalf("status %d, content type %q", sub.res.StatusCode, ct)
		}
		var got []feedEventJSON
		for range 4 { // caught up over two reads of 3
			got = append(got, sub.nextFeedEvent(t))
		}
		live := ts.mustPost(t, "sub-2", "A", 2)
		ts.mustPost(t, "other-2", "A", 1) // not in the category
		for range 2 {
			got = append(got, sub.nextFeedEvent(t))
		}
		checkFeed(t, "category/sub", got, append(filter(before, func(a acked) bool { return a.stream == "sub-1" }), live...))
	})

	t.Run("TypeNDJSONResume", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/feeds/type/B/subscribe", "Accept", "application/x-ndjson")
		if ct := sub.res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Fatalf("content type %q", ct)
		}
		first := sub.nextFeedEvent(t)
		sub.cancel()
		// Resume after the first event: the second follows, then live.
		sub = subscribe(t, ts, "/v1/feeds/type/B/subscribe?from="+first.Position, "Accept", "application/x-ndjson")
		second := sub.nextFeedEvent(t)
		live := ts.mustPost(t, "other-3", "B", 1)
		got := []feedEventJSON{first, second, sub.nextFeedEvent(t)}
		checkFeed(t, "type/B", got, append(filter(before, func(a acked) bool { return a.typ == "B" }), live...))
	})

	t.Run("FromNow", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/feeds/all/subscribe?from=now")
		from := sub.res.Header.Get(httpapi.HeaderFeedFrom)
		// SSE: first an id-only message, so an EventSource that reconnects
		// resumes at the resolved position, not at a later "now".
		if m := sub.nextEvent(t); !m.hasID || m.id != from || from == "" || m.data != "" {
			t.Fatalf("first message %+v, want the id %q alone", m, from)
		}
		live := ts.mustPost(t, "now-1", "C", 1)
		got := sub.nextFeedEvent(t)
		checkFeed(t, "from=now", []feedEventJSON{got}, live)
		if got.Position == from {
			t.Fatalf("event at %s, the start itself", got.Position)
		}
		// NDJSON has no ids: the header carries the start.
		nd := subscribe(t, ts, "/v1/feeds/all/subscribe?from=now", "Accept", "application/x-ndjson")
		if nd.res.Header.Get(httpapi.HeaderFeedFrom) == "" {
			t.Fatalf("no %s header", httpapi.HeaderFeedFrom)
		}
	})

	t.Run("HeartbeatWhenIdle", func(t *testing.T) {
		for _, accept := range []string{"text/event-stream", "application/x-ndjson"} {
			sub := subscribe(t, ts, "/v1/feeds/category/quiet/subscribe", "Accept", accept)
			for range 2 {
				if m := sub.next(t, 5*time.Second); !m.heartbeat {
					t.Fatalf("%s: expected a heartbeat on an idle feed, got %+v", accept, m)
				}
			}
		}
	})

	t.Run("WokenByThisInstance", func(t *testing.T) {
		// This server polls only hourly: events can arrive only because
		// its store's maintainer moved the watermark and woke it. (Its own
		// keyspace: no other instance's maintainer competes for the
		// watermark.)
		lazy := MustFeedServer(t, func(c *httpapi.Config) { c.SubscribePoll = time.Hour; c.Heartbeat = time.Hour })
		sub := subscribe(t, lazy, "/v1/feeds/all/subscribe")
		live := lazy.mustPost(t, "wake-1", "W", 2)
		got := []feedEventJSON{sub.nextFeedEvent(t), sub.nextFeedEvent(t)}
		checkFeed(t, "woken", got, live)
	})
}

// TestFeedSubscribeTwoInstances: two server instances (two stores on one
// keyspace) take appends concurrently while a subscriber follows the all
// feed over SSE through the first, disconnects midway and resumes with
// Last-Event-ID through the second. It ends with every acknowledged event
// exactly once, in position order, and nothing after them.
func TestFeedSubscribeTwoInstances(t *testing.T) {
	cfg := func(c *httpapi.Config) {
		c.SubscribePoll = 100 * time.Millisecond
		c.Heartbeat = time.Second
		c.FeedPageSize = 16
	}
	a := MustFeedServer(t, cfg)
	b := a.Instance(t, cfg)

	const writers, perPhase = 6, 10
	var (
		mu       sync.Mutex
		all      []acked
		wg       sync.WaitGroup
		midway   = make(chan struct{}) // closed once the first subscription is gone
		phase1   sync.WaitGroup
		errs     = make(chan error, writers)
		cancelWr = make(chan struct{})
	)
	phase1.Add(writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 2 * perPhase {
				if i == perPhase {
					phase1.Done()
					select {
					case <-midway:
					case <-cancelWr:
						return
					}
				}
				srv := []*testServer{a, b}[(w+i)%2]
				stream := fmt.Sprintf("%s-%d", []string{"acct", "user"}[r.IntN(2)], r.IntN(5))
				evs, err := postEvents(srv.URL, stream, []string{"Opened", "Moved"}[r.IntN(2)], 1+r.IntN(3))
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					if i < perPhase {
						phase1.Done()
					}
					return
				}
				mu.Lock()
				all = append(all, evs...)
				mu.Unlock()
			}
		}()
	}
	defer func() { close(cancelWr); wg.Wait() }()

	// The first subscription, through a, takes some of the events of the
	// first phase (at least writers*perPhase) and leaves.
	var got []feedEventJSON
	sub := subscribe(t, a, "/v1/feeds/all/subscribe")
	for len(got) < writers*perPhase/2 {
		got = append(got, sub.nextFeedEvent(t))
	}
	sub.cancel()
	phase1.Wait()
	close(midway) // the second phase appends while nobody follows
	t.Logf("disconnected after %d events", len(got))

	// The second, through b, resumes after the last id.
	sub = subscribe(t, b, "/v1/feeds/all/subscribe", "Last-Event-ID", got[len(got)-1].Position)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var want []acked
	for want == nil || len(got) < len(want) {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-done:
			mu.Lock()
			want = all
			mu.Unlock()
			done = nil
			continue
		default:
		}
		if m := sub.next(t, 20*time.Second); !m.heartbeat {
			got = append(got, feedMsg(t, m))
		}
	}
	checkFeed(t, "resumed all", got, want)
	// Nothing follows the last event but heartbeats.
	for range 2 {
		if m := sub.next(t, 5*time.Second); !m.heartbeat {
			t.Fatalf("after every event: %+v", m)
		}
	}
	if len(want) < 2*writers*perPhase {
		t.Fatalf("only %d events acknowledged", len(want))
	}
}

// TestFeedDirection: feeds read forward only; direction=backward (or any
// other) is refused rather than ignored, on pages, NDJSON reads and
// subscriptions alike.
func TestFeedDirection(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "dir-1", 3)
	for _, path := range []string{"/v1/feeds/all", "/v1/feeds/category/dir", "/v1/feeds/all/subscribe", "/v1/feeds/type/t/subscribe"} {
		t.Run(strings.TrimPrefix(path, "/v1/feeds/"), func(t *testing.T) {
			p := MustProblem(t, ts.Do(t, "GET", path+"?direction=backward", nil), http.StatusBadRequest, "invalid_request")
			if d, _ := p["detail"].(string); !strings.Contains(d, "forward only") {
				t.Fatalf("detail %q does not say feeds read forward only", d)
			}
			MustProblem(t, ts.Do(t, "GET", path+"?direction=sideways", nil), http.StatusBadRequest, "invalid_request")
			MustProblem(t, ts.Do(t, "GET", path+"?direction=forward&direction=forward", nil), http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("ForwardIsTheDefault", func(t *testing.T) {
		r := ts.Do(t, "GET", "/v1/feeds/category/dir?direction=forward", nil)
		if r.Status != http.StatusOK {
			t.Fatal(r)
		}
		var got struct {
			Events []feedEventJSON `json:"events"`
		}
		if err := json.Unmarshal(r.Body, &got); err != nil || len(got.Events) != 3 || got.Events[0].Version != 1 {
			t.Fatalf("direction=forward: %v %s", err, r.Body)
		}
	})
	t.Run("NDJSON", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all?direction=backward", nil, "Accept", httpapi.MediaTypeNDJSON), http.StatusBadRequest, "invalid_request")
	})
}
