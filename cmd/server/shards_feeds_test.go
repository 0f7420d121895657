package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// feedEvent is an event as the feed routes send it.
type feedEvent struct {
	Position string `json:"position"`
	Stream   string `json:"stream"`
	ID       string `json:"id"`
	Version  int64  `json:"version"`
}

// sentEvents records what the writers sent and what was acknowledged.
type sentEvents struct {
	mu    sync.Mutex
	sent  map[string]bool   // every id sent, acknowledged or not
	acked map[string]string // id -> stream
}

// TestShardsFeeds: two real servers on the shard-log path, appends through
// both at once. A reader follows GET /v1/feeds/all page by page, each page
// from the other server, and an SSE subscriber resumes with Last-Event-ID
// on the other server every few events: each gets every acknowledged event
// exactly once, each stream's events in order and gapless, the same as the
// stream reads. Tokens the servers did not issue for that feed are 400
// invalid_position on every feed route; from=now is where only new commits
// follow.
func TestShardsFeeds(t *testing.T) {
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	a := MustRunMain(t, o, "--migrate", "--shards=4", "--shard-lease-ttl=1s", "--subscribe-poll=200ms")
	b := MustRunMain(t, o, "--shard-lease-ttl=1s", "--subscribe-poll=200ms")
	bases := []string{"http://" + a.Addr(), "http://" + b.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	w := &sentEvents{sent: map[string]bool{}, acked: map[string]string{}}
	var (
		writersDone = make(chan struct{})
		wg          sync.WaitGroup
	)
	const writers, appends = 6, 20
	for n := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				stream := fmt.Sprintf("fe-%d", (n+i)%8)
				if i%4 == 3 {
					stream = fmt.Sprintf("fx-%d", i%3)
				}
				w.append(t, bases[(n+i)%2], stream, 1+i%3)
			}
		}()
	}

	// The reader follows the all feed while the appends run.
	var (
		paged  []feedEvent
		readWG sync.WaitGroup
	)
	readWG.Add(1)
	go func() {
		defer readWG.Done()
		next := ""
		for i := 0; ; i++ {
			// Done before the read: an empty page then is the end of
			// everything acknowledged.
			done := false
			select {
			case <-writersDone:
				done = true
			default:
			}
			var page struct {
				Events []feedEvent `json:"events"`
				Next   string      `json:"next"`
			}
			if err := getJSON(ctx, bases[i%2]+"/v1/feeds/all?limit=7&from="+url.QueryEscape(next), &page); err != nil {
				t.Errorf("page %d: %v", i, err)
				return
			}
			paged = append(paged, page.Events...)
			if len(page.Events) > 0 && page.Next != page.Events[len(page.Events)-1].Position {
				t.Errorf("page %d: next %q is not its last event's position", i, page.Next)
				return
			}
			next = page.Next
			if done && len(page.Events) == 0 {
				return
			}
			if !done {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()

	// The subscriber hops between the servers every 25 events.
	sub := &sseFollower{}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	readWG.Add(1)
	go func() {
		defer readWG.Done()
		if err := sub.follow(subCtx, bases, 25); err != nil && subCtx.Err() == nil {
			t.Errorf("subscriber: %v", err)
		}
	}()

	wg.Wait()
	close(writersDone)
	acked := w.ackedIDs()
	if len(acked) < writers*appends/2 {
		t.Fatalf("only %d events acknowledged", len(acked))
	}
	waitFor(t, time.Minute, "the subscriber to get every acknowledged event", func() bool {
		return sub.has(acked)
	})
	stopSub()
	readWG.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if sub.connections < 3 {
		t.Fatalf("the subscriber connected %d times, want hops between the servers", sub.connections)
	}

	t.Logf("%d events acknowledged; the reader read %d, the subscriber %d over %d connections", len(acked), len(paged), len(sub.events()), sub.connections)
	streams := readStreams(t, ctx, bases[1], w)
	w.check(t, "paged reader", paged, streams)
	w.check(t, "subscriber", sub.events(), streams)
	nd := readNDJSON(t, ctx, bases[1]+"/v1/feeds/all")
	w.check(t, "NDJSON stream", nd, streams)

	t.Run("ErrInvalidPosition", func(t *testing.T) {
		tok := paged[len(paged)/2].Position
		var cat struct{ Next string }
		if err := getJSON(ctx, bases[0]+"/v1/feeds/category/fx?limit=2", &cat); err != nil || cat.Next == "" {
			t.Fatalf("category page: %v", err)
		}
		mid := len(tok) / 2
		altered := tok[:mid] + string("AB"[boolInt(tok[mid] == 'A')]) + tok[mid+1:]
		cases := []struct{ name, path, token string }{
			{"Forged", "/v1/feeds/all", uuid.NewString()},
			{"Altered", "/v1/feeds/all", altered},
			{"OtherFeed", "/v1/feeds/category/fe", tok},
			{"OtherCategory", "/v1/feeds/category/fe", cat.Next},
			{"OtherType", "/v1/feeds/type/T", cat.Next},
		}
		for _, c := range cases {
			for _, base := range bases {
				q := "?from=" + url.QueryEscape(c.token)
				mustInvalidPosition(t, ctx, c.name, base+c.path+q, nil)
				mustInvalidPosition(t, ctx, c.name+" ndjson", base+c.path+q, http.Header{"Accept": {"application/x-ndjson"}})
				mustInvalidPosition(t, ctx, c.name+" subscribe", base+c.path+"/subscribe"+q, nil)
				mustInvalidPosition(t, ctx, c.name+" Last-Event-ID", base+c.path+"/subscribe", http.Header{"Last-Event-ID": {c.token}})
			}
		}
	})

	t.Run("FromNow", func(t *testing.T) {
		var now struct {
			Events []feedEvent `json:"events"`
			Next   string      `json:"next"`
		}
		if err := getJSON(ctx, bases[0]+"/v1/feeds/all?from=now", &now); err != nil {
			t.Fatal(err)
		}
		if len(now.Events) != 0 || now.Next == "" {
			t.Fatalf("from=now: %d events, next %q", len(now.Events), now.Next)
		}
		id := w.append(t, bases[1], "fnow-1", 1)
		var after struct{ Events []feedEvent }
		if err := getJSON(ctx, bases[0]+"/v1/feeds/all?from="+url.QueryEscape(now.Next), &after); err != nil {
			t.Fatal(err)
		}
		if len(after.Events) != 1 || after.Events[0].ID != id[0] {
			t.Fatalf("after from=now: %+v, want only %s", after.Events, id[0])
		}
	})
}

// append posts n events with ids of its own to stream through base and
// returns their ids. A failed append is logged, not fatal: its events may
// or may not be committed, and the checks allow either.
func (w *sentEvents) append(t *testing.T, base, stream string, n int) []string {
	ids := make([]string, n)
	evs := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		evs[i] = fmt.Sprintf(`{"id":%q,"type":"T","data":{"i":%d}}`, ids[i], i)
	}
	w.mu.Lock()
	for _, id := range ids {
		w.sent[id] = true
	}
	w.mu.Unlock()
	res, err := http.Post(base+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(`{"events":[`+strings.Join(evs, ",")+`]}`))
	if err != nil {
		t.Logf("append to %s: %v", stream, err)
		return ids
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Logf("append to %s through %s: %d %s", stream, base, res.StatusCode, body)
		return ids
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		w.acked[id] = stream
	}
	return ids
}

func (w *sentEvents) ackedIDs() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.acked))
	for id, s := range w.acked {
		out[id] = s
	}
	return out
}

// check asserts that got holds every acknowledged event exactly once,
// nothing that was not sent, and each stream's events gapless and in
// order, as the stream reads (streams: ids by stream, in version order)
// hold them.
func (w *sentEvents) check(t *testing.T, name string, got []feedEvent, streams map[string][]string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	byStream := map[string][]string{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("%s: event %s (%s@%d) twice", name, e.ID, e.Stream, e.Version)
		}
		seen[e.ID] = true
		if !w.sent[e.ID] {
			t.Fatalf("%s: event %s (%s@%d) was never sent", name, e.ID, e.Stream, e.Version)
		}
		if e.Position == "" {
			t.Fatalf("%s: event %s has no position", name, e.ID)
		}
		if want := int64(len(byStream[e.Stream]) + 1); e.Version != want {
			t.Fatalf("%s: %s@%d where version %d was due", name, e.Stream, e.Version, want)
		}
		byStream[e.Stream] = append(byStream[e.Stream], e.ID)
	}
	for id, stream := range w.acked {
		if !seen[id] {
			t.Fatalf("%s: acknowledged event %s of %s missing (%d events read)", name, id, stream, len(got))
		}
	}
	for stream, ids := range streams {
		if strings.Join(byStream[stream], ",") != strings.Join(ids, ",") {
			t.Fatalf("%s: %s has %d events in the feed, %d in the stream, or another order", name, stream, len(byStream[stream]), len(ids))
		}
	}
}

// readStreams reads every stream the writers touched: its ids in version
// order.
func readStreams(t *testing.T, ctx context.Context, base string, w *sentEvents) map[string][]string {
	t.Helper()
	names := map[string]bool{}
	for _, s := range w.ackedIDs() {
		names[s] = true
	}
	out := map[string][]string{}
	for s := range names {
		var page struct {
			Events []struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			} `json:"events"`
		}
		if err := getJSON(ctx, base+"/v1/streams/"+s+"/events?limit=1000", &page); err != nil {
			t.Fatal(err)
		}
		for i, e := range page.Events {
			if e.Version != int64(i+1) {
				t.Fatalf("%s: event %d has version %d", s, i, e.Version)
			}
			out[s] = append(out[s], e.ID)
		}
	}
	return out
}

// readNDJSON reads a feed as NDJSON to its end; the response must end
// with the Eventlog-Next trailer.
func readNDJSON(t *testing.T, ctx context.Context, u string) []feedEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("ndjson: %d %s", res.StatusCode, b)
	}
	var out []feedEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e feedEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if next := res.Trailer.Get("Eventlog-Next"); len(out) > 0 && next != out[len(out)-1].Position {
		t.Fatalf("ndjson: trailer Eventlog-Next %q, last position %q", next, out[len(out)-1].Position)
	}
	return out
}

// sseFollower subscribes to the all feed, resuming with Last-Event-ID.
type sseFollower struct {
	mu          sync.Mutex
	got         []feedEvent
	ids         map[string]bool
	connections int
}

// follow reads the subscription, hopping to the next of bases after every
// hop events, until ctx ends.
func (f *sseFollower) follow(ctx context.Context, bases []string, hop int) error {
	last := ""
	for conn := 0; ctx.Err() == nil; conn++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, bases[conn%len(bases)]+"/v1/feeds/all/subscribe", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.connections++
		f.mu.Unlock()
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return fmt.Errorf("subscribe: %d %s", res.StatusCode, b)
		}
		err = f.read(res.Body, hop, &last)
		res.Body.Close()
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// read takes up to hop events from one SSE response.
func (f *sseFollower) read(body io.Reader, hop int, last *string) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, data string
	n := 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && data != "":
			var e feedEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return fmt.Errorf("event %q: %v", data, err)
			}
			if e.Position != id {
				return fmt.Errorf("SSE id %q is not the event's position %q", id, e.Position)
			}
			f.mu.Lock()
			f.got = append(f.got, e)
			if f.ids == nil {
				f.ids = map[string]bool{}
			}
			f.ids[e.ID] = true
			f.mu.Unlock()
			*last, id, data = id, "", ""
			if n++; n >= hop {
				return nil
			}
		}
	}
	return sc.Err()
}

func (f *sseFollower) has(ids map[string]string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range ids {
		if !f.ids[id] {
			return false
		}
	}
	return true
}

func (f *sseFollower) events() []feedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]feedEvent(nil), f.got...)
}

// getJSON decodes a 200 answer of GET u into v.
func getJSON(ctx context.Context, u string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// mustInvalidPosition asserts GET u (with headers h) is a 400
// invalid_position problem.
func mustInvalidPosition(t *testing.T, ctx context.Context, name, u string, h http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var p struct{ Code string }
	json.Unmarshal(b, &p)
	if res.StatusCode != http.StatusBadRequest || p.Code != "invalid_position" {
		t.Fatalf("%s: GET %s: %d %s, want 400 invalid_position", name, u, res.StatusCode, b)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
