package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// gatedStore is the real store whose reads of one stream, once they have
// read its first event, wait until open is closed: a replay held open, as
// by a client that reads slowly.
type gatedStore struct {
	*shardstore.Store
	stream  log.StreamID
	waiting chan struct{} // closed once a gated read waits
	once    sync.Once
	open    chan struct{}
	entered chan struct{} // if not nil, takes a value as each gated read waits
}

func (g *gatedStore) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	if r.Stream != g.stream {
		return g.Store.ReadStream(ctx, r, fn)
	}
	first := true
	return g.Store.ReadStream(ctx, r, func(e *log.RecordedEvent) error {
		if first {
			first = false
			g.once.Do(func() { close(g.waiting) })
			if g.entered != nil {
				g.entered <- struct{}{}
			}
			select {
			case <-g.open:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fn(e)
	})
}

// TestLongReadLimit: NDJSON replays, feed reads and state loads of more
// than MaxPageSize events share a per-instance limit (MaxLongReads). With
// it at 1 and a replay held open, another replay, a feed page, a feed
// stream and a long state load are 429 too_many_long_reads with
// Retry-After (state loads were served, uncounted), while a stream's JSON
// page (short, streamed as read), a short state load and a consumer group
// read (slots of its own: it was refused) are served; once the replay
// ends, the others are served again.
func TestLongReadLimit(t *testing.T) {
	g := &gatedStore{stream: "held-1", waiting: make(chan struct{}), open: make(chan struct{})}
	ts := MustServerWrapped(t, func(st log.Store) log.Store {
		g.Store = st.(*shardstore.Store)
		return g
	}, func(c *httpapi.Config) { c.MaxLongReads, c.MaxPageSize, c.DefaultPageSize = 1, 5, 5 })
	var release sync.Once
	open := func() { release.Do(func() { close(g.open) }) }
	t.Cleanup(open) // before the server closes, which waits for the replay
	ts.MustAppend(t, "held-1", 3)
	ts.MustAppend(t, "other-1", 2)
	ts.MustAppend(t, "long-1", 6) // a state load of 6 events: long
	if r, _ := ts.join(t, "readers", `{"feed":"all","member":"m-1"}`); r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	const ndjson = "application/x-ndjson"

	type answer struct {
		status int
		body   string
		err    error
	}
	held := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/streams/held-1/events", nil)
		req.Header.Set("Accept", ndjson)
		resp, err := ts.Client().Do(req)
		if err != nil {
			held <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		held <- answer{status: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-g.waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not start")
	}

	refused := map[string][]string{
		"replay":      {"/v1/streams/other-1/events", "Accept", ndjson},
		"feed page":   {"/v1/feeds/all"},
		"feed stream": {"/v1/feeds/all", "Accept", ndjson},
		"long state":  {"/v1/streams/long-1/state"},
	}
	for what, req := range refused {
		r := ts.memberDo(t, "GET", req[0], nil, req[1:]...)
		MustProblem(t, r, http.StatusTooManyRequests, "too_many_long_reads")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: a 429 without Retry-After", what)
		}
	}
	if p := mustPage(t, ts.Do(t, "GET", "/v1/streams/other-1/events", nil)); len(p.Events) != 2 {
		t.Fatalf("a page while a replay is held: %d events, want 2", len(p.Events))
	}
	if r := ts.Do(t, "GET", "/v1/streams/other-1/state", nil); r.Status != http.StatusOK {
		t.Fatalf("a state load of 2 events while a replay is held: %s", r)
	}
	if r := ts.memberDo(t, "GET", "/v1/groups/readers/members/m-1/events", nil); r.Status != http.StatusOK {
		t.Fatalf("a group read while a replay holds the long reads: %s", r)
	}

	open()
	a := <-held
	if a.err != nil || a.status != http.StatusOK || strings.Count(a.body, "\n") != 3 {
		t.Fatalf("the held replay: %d %v: %s", a.status, a.err, a.body)
	}
	for what, req := range refused {
		if r := ts.memberDo(t, "GET", req[0], nil, req[1:]...); r.Status != http.StatusOK {
			t.Errorf("%s after the replay ended: %s", what, r)
		}
	}
}

// mustAppendTwoAs appends two events to each of streams with the key
// bearer.
func mustAppendTwoAs(t *testing.T, as *authServer, bearer string, streams ...string) {
	t.Helper()
	for _, stream := range streams {
		body := `{"events":[{"type":"t","data":1},{"type":"t","data":2}]}`
		if r := as.As(t, bearer, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append: %s", r)
		}
	}
}

// holdReplays starts n NDJSON replays of g's stream with the key bearer,
// in wg, each read to its end, and returns once each waits in g's gate
// (g.entered).
func holdReplays(t *testing.T, as *authServer, g *gatedStore, bearer string, n int, wg *sync.WaitGroup) {
	t.Helper()
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", as.URL+"/v1/streams/"+string(g.stream)+"/events", nil)
			req.Header.Set("Accept", "application/x-ndjson")
			req.Header.Set("Authorization", bearer)
			resp, err := as.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
		})
	}
	for range n {
		select {
		case <-g.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the replays did not start")
		}
	}
}

// TestLongReadsPerKey: with API keys, one key holds at most
// MaxLongReadsPerKey of the instance's long reads, so that its replays
// cannot refuse every other key's reads: with 3 long reads and 2 a key,
// key a's third replay is 429 too_many_long_reads (it was served, and
// then b's was refused) while b's replay is served.
func TestLongReadsPerKey(t *testing.T) {
	g := &gatedStore{stream: "held-1", waiting: make(chan struct{}), open: make(chan struct{}), entered: make(chan struct{}, 8)}
	as := MustAuthServerWrapped(t, func(st log.Store) log.Store {
		g.Store = st.(*shardstore.Store)
		return g
	}, func(c *httpapi.Config) { c.MaxLongReads, c.MaxLongReadsPerKey = 3, 2 })
	var release sync.Once
	open := func() { release.Do(func() { close(g.open) }) }
	t.Cleanup(open) // before the server closes, which waits for the replays
	root := as.MustToken(t, "root", 0, "admin")
	a := as.MustToken(t, "a", 0, "read:*")
	b := as.MustToken(t, "b", 0, "read:*")
	mustAppendTwoAs(t, as, root, "held-1", "other-1")
	const ndjson = "application/x-ndjson"
	var wg sync.WaitGroup
	defer wg.Wait()
	defer open()
	holdReplays(t, as, g, a, 2, &wg)
	r := as.As(t, a, "GET", "/v1/streams/other-1/events", "", "Accept", ndjson)
	MustProblem(t, r, http.StatusTooManyRequests, "too_many_long_reads")
	if r.Header.Get("Retry-After") == "" {
		t.Error("a 429 without Retry-After")
	}
	if r := as.As(t, b, "GET", "/v1/streams/other-1/events", "", "Accept", ndjson); r.Status != http.StatusOK || strings.Count(string(r.Body), "\n") != 2 {
		t.Fatalf("key b's replay while key a holds its share: %s", r)
	}
	open()
	wg.Wait()
	if r := as.As(t, a, "GET", "/v1/streams/other-1/events", "", "Accept", ndjson); r.Status != http.StatusOK {
		t.Fatalf("key a's replay once its others ended: %s", r)
	}
}

// heldGroupStore is a gatedStore whose consumer group reads, once hold is
// set, wait until groupOpen is closed, each telling groupEntered first.
type heldGroupStore struct {
	*gatedStore
	hold         atomic.Bool
	groupEntered chan struct{}
	groupOpen    chan struct{}
}

func (h *heldGroupStore) ReadGroup(ctx context.Context, r log.GroupRead) (log.GroupPage, error) {
	if h.hold.Load() {
		h.groupEntered <- struct{}{}
		select {
		case <-h.groupOpen:
		case <-ctx.Done():
			return log.GroupPage{}, ctx.Err()
		}
	}
	return h.gatedStore.ReadGroup(ctx, r)
}

// TestGroupReadsBesideReplays: consumer group reads have slots of their
// own (MaxGroupReads, and MaxLongReadsPerKey a key). With 2 long reads, 2
// a key and 1 group read, key a's two replays held open fill both the
// instance's long reads and its own share: its third replay is 429
// too_many_long_reads, and its group member's read is served (it was
// refused, the slots shared). A group read held open makes the next one
// 429, and takes no long read: a's replay is served beside it once its
// first two ended.
func TestGroupReadsBesideReplays(t *testing.T) {
	g := &heldGroupStore{
		gatedStore:   &gatedStore{stream: "held-1", waiting: make(chan struct{}), open: make(chan struct{}), entered: make(chan struct{}, 8)},
		groupEntered: make(chan struct{}, 8), groupOpen: make(chan struct{}),
	}
	as := MustAuthServerWrapped(t, func(st log.Store) log.Store {
		g.Store = st.(*shardstore.Store)
		return g
	}, func(c *httpapi.Config) { c.MaxLongReads, c.MaxLongReadsPerKey, c.MaxGroupReads = 2, 2, 1 })
	var releaseReplays, releaseGroups sync.Once
	open := func() { releaseReplays.Do(func() { close(g.open) }) }
	openGroups := func() { releaseGroups.Do(func() { close(g.groupOpen) }) }
	t.Cleanup(open) // before the server closes, which waits for the reads
	t.Cleanup(openGroups)
	root := as.MustToken(t, "root", 0, "admin")
	a := as.MustToken(t, "a", 0, "read:*", "group:*")
	mustAppendTwoAs(t, as, root, "held-1", "other-1")
	r := as.As(t, a, "POST", "/v1/groups/readers/members", `{"feed":"all","member":"m-1"}`, "Content-Type", jsonCT)
	var m struct{ Secret string }
	if r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	mustDecode(t, r, &m)
	const ndjson = "application/x-ndjson"
	read := func() response {
		return as.As(t, a, "GET", "/v1/groups/readers/members/m-1/events", "", "Eventlog-Member-Secret", m.Secret)
	}
	var wg, replays sync.WaitGroup
	defer wg.Wait()
	defer replays.Wait()
	defer open()
	defer openGroups()
	holdReplays(t, as, g.gatedStore, a, 2, &replays)
	MustProblem(t, as.As(t, a, "GET", "/v1/streams/other-1/events", "", "Accept", ndjson), http.StatusTooManyRequests, "too_many_long_reads")
	if r := read(); r.Status != http.StatusOK {
		t.Fatalf("a group read while the key's replays fill the long reads: %s", r)
	}

	g.hold.Store(true)
	held := make(chan response, 1)
	wg.Go(func() { held <- read() })
	select {
	case <-g.groupEntered:
	case <-time.After(30 * time.Second):
		t.Fatal("the group read did not start")
	}
	r = read()
	MustProblem(t, r, http.StatusTooManyRequests, "too_many_long_reads")
	if r.Header.Get("Retry-After") == "" {
		t.Error("a 429 without Retry-After")
	}
	open()
	replays.Wait()
	if r := as.As(t, a, "GET", "/v1/streams/other-1/events", "", "Accept", ndjson); r.Status != http.StatusOK || strings.Count(string(r.Body), "\n") != 2 {
		t.Fatalf("a replay beside the held group read: %s", r)
	}
	openGroups()
	if r := <-held; r.Status != http.StatusOK {
		t.Fatalf("the held group read: %s", r)
	}
}
