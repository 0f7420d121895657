package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
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

// keyGate is the real store whose replays wait on reaching version at of
// any stream, and whose feed reads page after page (log.FeedPager) wait
// before their second page, until open is closed or the read's context
// ends: a long read held open, as by a long stream or feed.
type keyGate struct {
	*shardstore.Store
	at      int64
	entered chan string // the gated read's kind, as it waits
	open    chan struct{}
}

func (g *keyGate) wait(ctx context.Context, what string) error {
	g.entered <- what
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *keyGate) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	return g.Store.ReadStream(ctx, r, func(e *log.RecordedEvent) error {
		if e.Version == g.at {
			if err := g.wait(ctx, "replay"); err != nil {
				return err
			}
		}
		return fn(e)
	})
}

func (g *keyGate) FeedPages(ctx context.Context, r log.FeedRead) (log.FeedPages, error) {
	p, err := g.Store.FeedPages(ctx, r)
	if err != nil {
		return nil, err
	}
	return &gatedPages{FeedPages: p, ctx: ctx, g: g}, nil
}

type gatedPages struct {
	log.FeedPages
	ctx context.Context
	g   *keyGate
	n   int
}

func (p *gatedPages) Next(limit, maxBytes int) (log.FeedPage, error) {
	if p.n++; p.n == 2 {
		if err := p.g.wait(p.ctx, "feed"); err != nil {
			return log.FeedPage{}, err
		}
	}
	return p.FeedPages.Next(limit, maxBytes)
}

// TestLongReadsEndWithTheirKey: an NDJSON replay, an NDJSON feed read and
// a state load last as long as their data, and a revocation takes effect
// within the key refresh (README) on them too: once their key no longer
// authenticates, one that has sent part of its body is cut off (the
// client's read fails, never ends as if complete), and one that has sent
// nothing yet is 401 unauthenticated. They went on until their data ended
// (here, held, they were still open 5 s after the revocation). A state
// load whose data comes right after the revocation, before the next
// periodic check, checks its key once more before it answers: 401 (it
// answered 200, as did every state load held by the gate).
func TestLongReadsEndWithTheirKey(t *testing.T) {
	g := &keyGate{at: 20, entered: make(chan string, 4)}
	as := MustAuthServerWrapped(t, func(st log.Store) log.Store {
		g.Store = st.(*shardstore.Store)
		return g
	}, func(c *httpapi.Config) { c.FeedPageSize = 20 })
	root := as.MustToken(t, "root", 0, "admin")
	// 25 events of 15 KiB: more than a flush (256 KiB) before version 20.
	data := `"` + strings.Repeat("x", 15<<10) + `"`
	for range 5 {
		body := `{"events":[` + strings.Repeat(`{"type":"t","data":`+data+`},`, 4) + `{"type":"t","data":` + data + `}]}`
		if r := as.As(t, root, "POST", "/v1/streams/big-1/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append: %s", r)
		}
	}
	if r := as.As(t, root, "POST", "/v1/streams/small-1/events", `{"events":[{"type":"t","data":1}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append: %s", r)
	}
	// 25 small events: a state up to version 25 waits at 20 with nothing sent.
	if r := as.As(t, root, "POST", "/v1/streams/mid-1/events", `{"events":[`+strings.Repeat(`{"type":"t","data":1},`, 24)+`{"type":"t","data":1}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append: %s", r)
	}
	const ndjson = "application/x-ndjson"
	for i, tc := range []struct {
		what, path string
		gate       string // what the read waits in
		started    bool   // whether it has sent part of its body by then
		accept     string // default NDJSON
		at         bool   // the gate opens right after the revocation
	}{
		{"replay, part sent", "/v1/streams/big-1/events", "replay", true, "", false},
		// The gate is at version 20: reading from 20, nothing is sent.
		{"replay, nothing sent", "/v1/streams/big-1/events?from=20", "replay", false, "", false},
		// A first page of 20 events, then the second waits.
		{"feed stream, part sent", "/v1/feeds/all", "feed", true, "", false},
		// A state up to a version reads its tail through ReadStream (the
		// gate); 19 events of 15 KiB pass a flush.
		{"state, part sent", "/v1/streams/big-1/state?at=25", "replay", true, jsonCT, false},
		{"state, nothing sent", "/v1/streams/mid-1/state?at=25", "replay", false, jsonCT, false},
		{"state, answered at once", "/v1/streams/mid-1/state?at=25", "replay", false, jsonCT, true},
	} {
		t.Run(tc.what, func(t *testing.T) {
			// A gate of its own (the read before has ended).
			g.open = make(chan struct{})
			var release sync.Once
			open := func() { release.Do(func() { close(g.open) }) }
			t.Cleanup(open) // before the server closes, which waits for the read
			name := fmt.Sprintf("reader-%d", i)
			key := as.MustToken(t, name, 0, "read:*")
			type answer struct {
				status  int
				lines   int
				bytes   int
				readErr error
			}
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest("GET", as.URL+tc.path, nil)
				req.Header.Set("Accept", cmp.Or(tc.accept, ndjson))
				req.Header.Set("Authorization", key)
				resp, err := as.Client().Do(req)
				if err != nil {
					done <- answer{readErr: err}
					return
				}
				defer resp.Body.Close()
				// A state is one line: what came before a cut counts too.
				b, err := io.ReadAll(resp.Body)
				done <- answer{status: resp.StatusCode, lines: bytes.Count(b, []byte("\n")), bytes: len(b), readErr: err}
			}()
			select {
			case what := <-g.entered:
				if what != tc.gate {
					t.Fatalf("the %s waits, want the %s", what, tc.gate)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the read did not reach its gate")
			}
			if r := as.As(t, root, "DELETE", "/v1/admin/keys/"+name, ""); r.Status != http.StatusNoContent {
				t.Fatalf("revoke: %s", r)
			}
			if err := as.Auth.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tc.at {
				open() // the rest of the data at once: only a check before the answer sees the revocation
			}
			var a answer
			select {
			case a = <-done:
			case <-time.After(5 * time.Second):
				open()
				a = <-done
				t.Fatalf("still open 5 s after its key was revoked; once its data came: %d, %d lines, %v", a.status, a.lines, a.readErr)
			}
			switch {
			case tc.started && (a.status != http.StatusOK || a.readErr == nil || a.bytes == 0):
				t.Fatalf("got %d, %d lines (%d bytes), read error %v; want 200, part of the body, then a cut", a.status, a.lines, a.bytes, a.readErr)
			case !tc.started && a.status != http.StatusUnauthorized:
				t.Fatalf("got %d, %d lines, read error %v; want 401", a.status, a.lines, a.readErr)
			}
			t.Logf("%d, %d lines, read error %v", a.status, a.lines, a.readErr)
		})
	}
}
