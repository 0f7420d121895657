package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// helperPanicStore is the real store whose ReadStream reads on a helper
// goroutine of the request (a fanout.Group), where it panics with value
// after passing the first events to fn, as a read's fan-out goroutine
// that panics does.
type helperPanicStore struct {
	log.Store
	value any
	after int
}

func (s helperPanicStore) ReadStream(ctx context.Context, rr log.ReadRange, fn func(*log.RecordedEvent) error) error {
	var (
		g   fanout.Group
		err error
	)
	g.Go(func() {
		n := 0
		err = s.Store.ReadStream(ctx, rr, func(e *log.RecordedEvent) error {
			if n++; n > s.after {
				panic(s.value)
			}
			return fn(e)
		})
	})
	g.Wait()
	return err
}

// TestHelperGoroutinePanicOverHTTP: a panic on a goroutine a request
// started, raised again on the request's (a *fanout.Panic), is a 500
// internal problem, logged with the panic's value and the stack of the
// goroutine where it happened; a panic(http.ErrAbortHandler) there cuts
// the connection, as on the request's own goroutine. The log held the
// *fanout.Panic's whole text as the value, and an abort from a helper
// goroutine was answered 500.
func TestHelperGoroutinePanicOverHTTP(t *testing.T) {
	t.Run("Internal", func(t *testing.T) {
		logs := &lockedBuffer{}
		ts := MustServerWrapped(t, func(st log.Store) log.Store { return helperPanicStore{st, "read bug", 0} }, func(c *httpapi.Config) {
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		})
		ts.MustAppend(t, "panic-1", 1)
		MustProblem(t, ts.Do(t, http.MethodGet, "/v1/streams/panic-1/events", nil), http.StatusInternalServerError, httpapi.CodeInternal)
		logs.mu.Lock()
		defer logs.mu.Unlock()
		found := false
		for _, line := range strings.Split(strings.TrimSpace(logs.b.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "panic serving request" {
				continue
			}
			found = true
			stack, _ := m["stack"].(string)
			if m["panic"] != "read bug" || !strings.Contains(stack, "helperPanicStore.ReadStream.func1.1") {
				t.Fatalf("panic logged as %q with a stack that does not show the helper goroutine's frames:\n%s", m["panic"], stack)
			}
		}
		if !found {
			t.Fatalf("no panic logged:\n%s", logs.b.String())
		}
	})
	t.Run("StreamCut", func(t *testing.T) {
		// A replay past its first batch (flushBytes): its status and
		// first events are sent, so the panic cuts it, where it ended
		// as if complete.
		ts := MustServerWrapped(t, func(st log.Store) log.Store { return helperPanicStore{st, "read bug", 500} }, func(c *httpapi.Config) {
			c.Logger = slog.New(slog.DiscardHandler)
		})
		data := `{"pad":"` + strings.Repeat("x", 1000) + `"}`
		var evs []string
		for range 50 {
			evs = append(evs, `{"type":"t","data":`+data+`}`)
		}
		for range 12 {
			if r := ts.Append(t, "panic-1", `{"events":[`+strings.Join(evs, ",")+`]}`); r.Status != http.StatusCreated {
				t.Fatalf("append: %s", r)
			}
		}
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/streams/panic-1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", httpapi.MediaTypeNDJSON)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || err == nil {
			t.Fatalf("status %d, %d bytes, read error %v; want 200 and a cut stream", resp.StatusCode, len(b), err)
		}
	})
	t.Run("Abort", func(t *testing.T) {
		ts := MustServerWrapped(t, func(st log.Store) log.Store { return helperPanicStore{st, http.ErrAbortHandler, 0} }, func(c *httpapi.Config) {
			c.Logger = slog.New(slog.DiscardHandler)
		})
		ts.MustAppend(t, "panic-1", 1)
		resp, err := http.Get(ts.URL + "/v1/streams/panic-1/events")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("status %d, want the connection cut", resp.StatusCode)
		}
	})
}

// feedPanicStore is the real store (and its feeds) whose ReadFeed panics.
// Without the real store's FeedPages, an NDJSON feed read reads each page
// with ReadFeed on its read-ahead goroutine.
type feedPanicStore struct {
	storeWithFeeds
}

type storeWithFeeds interface {
	log.Store
	log.FeedStore
}

func (feedPanicStore) ReadFeed(context.Context, log.FeedRead) (log.FeedPage, error) {
	panic("feed read bug")
}

// TestFeedReadAheadPanicOverHTTP: a panic of an NDJSON feed read's page
// read ahead, on a goroutine of its own, is the request's 500 internal.
// It ended the process (the test binary crashed).
func TestFeedReadAheadPanicOverHTTP(t *testing.T) {
	ts := MustServerWrapped(t, func(st log.Store) log.Store { return feedPanicStore{st.(storeWithFeeds)} }, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
	})
	ts.MustAppend(t, "panic-1", 1)
	MustProblem(t, ts.Do(t, http.MethodGet, "/v1/feeds/all", nil, "Accept", "application/x-ndjson"), http.StatusInternalServerError, httpapi.CodeInternal)
}

// readingStore is the real store whose ReadStream, once reading has been
// closed, waits for its context to end (a long read).
type readingStore struct {
	log.Store
	reading chan struct{}
}

func (s readingStore) ReadStream(ctx context.Context, _ log.ReadRange, _ func(*log.RecordedEvent) error) error {
	close(s.reading)
	<-ctx.Done()
	return ctx.Err()
}

// TestKeyWatchPanicOverHTTP: a panic of the goroutine that checks, while
// a long read lasts, that its API key still authenticates ends the read
// as the request's 500 internal. It ended the process (the test binary
// crashed).
func TestKeyWatchPanicOverHTTP(t *testing.T) {
	var armed atomic.Bool
	ao := auth.Options{Refresh: time.Hour, MaxStale: 2 * time.Hour, Now: func() time.Time {
		if armed.Load() {
			panic("clock bug")
		}
		return time.Now()
	}}
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits = testLimits
		so.Cassandra.Registerer = reg
	})
	reading := make(chan struct{})
	as := startAuth(t, store, opts, reg, ao, func(st log.Store) log.Store { return readingStore{st, reading} }, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
	})
	tok := as.MustToken(t, "reader", 0, "read:*")
	go func() {
		<-reading // the request passed its key check: the next one, the watch's, panics
		armed.Store(true)
	}()
	r := as.As(t, tok, http.MethodGet, "/v1/streams/panic-1/events", "", "Accept", httpapi.MediaTypeNDJSON)
	armed.Store(false)
	MustProblem(t, r, http.StatusInternalServerError, httpapi.CodeInternal)
}
