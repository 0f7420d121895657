package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
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
			select {
			case <-g.open:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fn(e)
	})
}

// TestLongReadLimit: NDJSON replays and feed reads share a per-instance
// limit (MaxLongReads). With it at 1 and a replay held open, another
// replay, a feed page and a feed stream are 429 too_many_long_reads with
// Retry-After, while a stream's JSON page (short, streamed as read) is
// served; once the replay ends, they are served again.
func TestLongReadLimit(t *testing.T) {
	g := &gatedStore{stream: "held-1", waiting: make(chan struct{}), open: make(chan struct{})}
	ts := MustServerWrapped(t, func(st log.Store) log.Store {
		g.Store = st.(*shardstore.Store)
		return g
	}, func(c *httpapi.Config) { c.MaxLongReads = 1 })
	var release sync.Once
	open := func() { release.Do(func() { close(g.open) }) }
	t.Cleanup(open) // before the server closes, which waits for the replay
	ts.MustAppend(t, "held-1", 3)
	ts.MustAppend(t, "other-1", 2)
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
	}
	for what, req := range refused {
		r := ts.Do(t, "GET", req[0], nil, req[1:]...)
		MustProblem(t, r, http.StatusTooManyRequests, "too_many_long_reads")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: a 429 without Retry-After", what)
		}
	}
	if p := mustPage(t, ts.Do(t, "GET", "/v1/streams/other-1/events", nil)); len(p.Events) != 2 {
		t.Fatalf("a page while a replay is held: %d events, want 2", len(p.Events))
	}

	open()
	a := <-held
	if a.err != nil || a.status != http.StatusOK || strings.Count(a.body, "\n") != 3 {
		t.Fatalf("the held replay: %d %v: %s", a.status, a.err, a.body)
	}
	for what, req := range refused {
		if r := ts.Do(t, "GET", req[0], nil, req[1:]...); r.Status != http.StatusOK {
			t.Errorf("%s after the replay ended: %s", what, r)
		}
	}
}
