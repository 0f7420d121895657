package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// eventReads is the real store, counting the calls that read events or
// snapshots.
type eventReads struct {
	*shardstore.Store
	n atomic.Int64
}

func (r *eventReads) ReadStream(ctx context.Context, rr log.ReadRange, fn func(*log.RecordedEvent) error) error {
	r.n.Add(1)
	return r.Store.ReadStream(ctx, rr, fn)
}

func (r *eventReads) ReadFeed(ctx context.Context, fr log.FeedRead) (log.FeedPage, error) {
	r.n.Add(1)
	return r.Store.ReadFeed(ctx, fr)
}

func (r *eventReads) LatestSnapshot(ctx context.Context, s log.StreamID, maxVersion int64) (log.Snapshot, error) {
	r.n.Add(1)
	return r.Store.LatestSnapshot(ctx, s, maxVersion)
}

// TestHead: every GET route answers HEAD as its GET would, without a body
// (it was 405). A HEAD of a route whose GET streams or is a long read (a
// replay, a state load, a feed read, a subscription) checks the request
// but reads no event: it answers at once, and a replay's HEAD does not
// read the stream.
func TestHead(t *testing.T) {
	var reads *eventReads
	ts := MustServerWrapped(t, func(s log.Store) log.Store {
		reads = &eventReads{Store: s.(*shardstore.Store)}
		return reads
	}, nil)
	ts.MustAppend(t, "head-1", 40)

	t.Run("AsGet", func(t *testing.T) {
		for _, path := range []string{"/v1/streams/head-1", "/v1/streams/head-1/events?limit=5", "/healthz", "/openapi.json"} {
			get := ts.Do(t, "GET", path, nil, "Accept-Encoding", "identity")
			head := ts.Do(t, "HEAD", path, nil, "Accept-Encoding", "identity")
			if head.Status != get.Status || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || len(head.Body) != 0 {
				t.Fatalf("HEAD %s: %d %q %q, GET: %d %q", path, head.Status, head.Header.Get("Content-Type"), head.Body, get.Status, get.Header.Get("Content-Type"))
			}
			if cl := head.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(get.Body)) {
				t.Fatalf("HEAD %s: Content-Length %s, GET's body %d bytes", path, cl, len(get.Body))
			}
		}
		MustProblemHead(t, ts.Do(t, "HEAD", "/v1/streams/nobody-1", nil), http.StatusNotFound)
		MustProblemHead(t, ts.Do(t, "HEAD", "/v1/streams/head-1/events?from=01", nil), http.StatusBadRequest)
	})

	ndjson := "application/x-ndjson"
	for _, tc := range []struct {
		name, path, accept string
		status             int
		ctype              string
	}{
		{"Replay", "/v1/streams/head-1/events", ndjson, 200, ndjson},
		{"ReplayNotFound", "/v1/streams/nobody-1/events", ndjson, 404, ""},
		{"ReplayBadRange", "/v1/streams/head-1/events?from=0", ndjson, 400, ""},
		{"State", "/v1/streams/head-1/state", "", 200, "application/json"},
		{"StateNotFound", "/v1/streams/nobody-1/state", "", 404, ""},
		{"FeedPage", "/v1/feeds/all", "", 200, "application/json"},
		{"FeedStream", "/v1/feeds/category/head", ndjson, 200, ndjson},
		{"FeedBadLimit", "/v1/feeds/all?limit=0", "", 400, ""},
		{"Subscribe", "/v1/streams/head-1/subscribe", "", 200, "text/event-stream"},
		{"SubscribeNotYet", "/v1/streams/nobody-1/subscribe", ndjson, 200, ndjson},
		{"SubscribeBadFrom", "/v1/streams/head-1/subscribe?from=0", "", 400, ""},
		{"SubscribeFeed", "/v1/feeds/all/subscribe", "", 200, "text/event-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reads.n.Load()
			var h []string
			if tc.accept != "" {
				h = []string{"Accept", tc.accept}
			}
			r := ts.Do(t, "HEAD", tc.path, nil, h...)
			if r.Status != tc.status || len(r.Body) != 0 {
				t.Fatalf("HEAD %s: %d %q, want %d", tc.path, r.Status, r.Body, tc.status)
			}
			if tc.ctype != "" && !strings.HasPrefix(r.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("HEAD %s: Content-Type %q, want %q", tc.path, r.Header.Get("Content-Type"), tc.ctype)
			}
			if r.Header.Get("Content-Length") != "" && tc.status == 200 {
				t.Fatalf("HEAD %s: Content-Length %q of a streamed body", tc.path, r.Header.Get("Content-Length"))
			}
			if n := reads.n.Load() - before; n != 0 {
				t.Fatalf("HEAD %s read events or snapshots %d times", tc.path, n)
			}
		})
	}

	t.Run("NotAGetRoute", func(t *testing.T) {
		r := ts.Do(t, "HEAD", "/v1/events", nil)
		if r.Status != http.StatusMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "POST") {
			t.Fatalf("HEAD /v1/events: %d, Allow %q", r.Status, r.Header.Get("Allow"))
		}
	})
}

// MustProblemHead checks a HEAD's answer: status, the problem's content
// type, no body.
func MustProblemHead(tb testing.TB, r response, status int) {
	tb.Helper()
	if r.Status != status || r.Header.Get("Content-Type") != "application/problem+json" || len(r.Body) != 0 {
		tb.Fatalf("HEAD: %d %q %q, want %d application/problem+json without a body", r.Status, r.Header.Get("Content-Type"), r.Body, status)
	}
}
