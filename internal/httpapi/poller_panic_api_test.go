package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
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

// probePanicStore is the real store whose reads only the shared pollers
// make panic while armed: a stream's head (Info: a stream subscriber
// reads events, never its head) and a feed's end (FeedEnd: the feed
// poller's first probe; a subscriber from a position never asks it). A
// feed read waits, while hold is set, until released is closed.
type probePanicStore struct {
	*shardstore.Store
	info, feedEnd, hold atomic.Bool
	released            chan struct{}
}

func (s *probePanicStore) Info(ctx context.Context, st log.StreamID) (log.StreamInfo, error) {
	if s.info.Load() {
		panic("stream probe bug")
	}
	return s.Store.Info(ctx, st)
}

func (s *probePanicStore) FeedEnd(ctx context.Context, f log.Feed) (string, error) {
	if s.feedEnd.Load() {
		panic("feed probe bug")
	}
	return s.Store.FeedEnd(ctx, f)
}

func (s *probePanicStore) ReadFeed(ctx context.Context, fr log.FeedRead) (log.FeedPage, error) {
	if s.hold.Load() {
		select {
		case <-s.released:
		case <-ctx.Done():
			return log.FeedPage{}, ctx.Err()
		}
	}
	return s.Store.ReadFeed(ctx, fr)
}

// signalHandler is a JSON log handler that also sends the message and
// attributes of each record at error level on ch (never blocking: dropped
// when full).
type signalHandler struct {
	slog.Handler
	ch chan map[string]any
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return h.Handler.Handle(ctx, r)
	}
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	select {
	case h.ch <- m:
	default:
	}
	return h.Handler.Handle(ctx, r)
}

// waitPollerPanic waits for the log line of a poller's panic and checks
// that it has the panic's value and the stack of the goroutine where it
// happened.
func waitPollerPanic(tb testing.TB, ch <-chan map[string]any, kind, value, frame string) {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-ch:
			if m["msg"] != "panic in a subscription poller: its subscriptions end" {
				continue
			}
			if stack, _ := m["stack"].(string); m["poller"] != kind || m["panic"] != value || !strings.Contains(stack, frame) {
				tb.Fatalf("logged %v, want poller %s, panic %q, a stack through %s", m, kind, value, frame)
			}
			return
		case <-timeout:
			tb.Fatalf("no log line of the %s poller's panic within 30s", kind)
		}
	}
}

// TestSubscriptionPollerPanic: a panic in the poller that the live
// subscriptions of a stream or feed share (no request's goroutine) ended
// the process. It ends the poller only: logged once at error level with
// its stack, its subscribers end with a server error (a cut stream once
// the answer started, 500 internal before), and the next subscription
// starts a new poller that serves it.
func TestSubscriptionPollerPanic(t *testing.T) {
	logs := make(chan map[string]any, 1024)
	var ps *probePanicStore
	ts := MustServerWrapped(t, func(s log.Store) log.Store {
		ps = &probePanicStore{Store: s.(*shardstore.Store), released: make(chan struct{})}
		return ps
	}, func(c *httpapi.Config) {
		c.SubscribePoll = 100 * time.Millisecond
		c.Heartbeat = time.Hour
		c.Logger = slog.New(signalHandler{slog.NewJSONHandler(io.Discard, nil), logs})
	})
	ts.MustAppend(t, "ppanic-1", 1)

	t.Run("StreamStarted", func(t *testing.T) {
		var subs []*subscription
		for range 2 {
			sub := subscribe(t, ts, "/v1/streams/ppanic-1/subscribe", "Accept", "application/x-ndjson")
			if sub.res.StatusCode != http.StatusOK {
				t.Fatalf("subscribe: %d", sub.res.StatusCode)
			}
			if m := sub.nextEvent(t); m.event.Version != 1 {
				t.Fatalf("got %+v, want version 1", m.event)
			}
			subs = append(subs, sub)
		}
		ps.info.Store(true) // the next poll panics
		waitPollerPanic(t, logs, "stream", "stream probe bug", "probePanicStore).Info")
		ps.info.Store(false)
		for i, sub := range subs {
			// Cut: a chunked body that ends without its last chunk.
			if _, err := io.ReadAll(sub.r); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("subscriber %d: read %v, want a cut stream (unexpected EOF)", i, err)
			}
		}
		// A new subscription starts a new poller.
		sub := subscribe(t, ts, "/v1/streams/ppanic-1/subscribe", "Accept", "application/x-ndjson", "Last-Event-ID", "1")
		if sub.res.StatusCode != http.StatusOK {
			t.Fatalf("subscribe again: %d", sub.res.StatusCode)
		}
		ts.MustAppend(t, "ppanic-1", 1)
		if m := sub.nextEvent(t); m.event.Version != 2 {
			t.Fatalf("got %+v, want version 2", m.event)
		}
	})

	t.Run("FeedNotAnswered", func(t *testing.T) {
		// The poller's first probe panics while the subscriber reads its
		// first page, before it answers: 500 internal.
		ps.feedEnd.Store(true)
		ps.hold.Store(true)
		var (
			wg   sync.WaitGroup
			res  response
			rerr error
		)
		wg.Go(func() {
			r, err := ts.Client().Get(ts.URL + "/v1/feeds/category/ppanic/subscribe")
			if rerr = err; err != nil {
				return
			}
			defer r.Body.Close()
			res.Status, res.Header = r.StatusCode, r.Header
			res.Body, rerr = io.ReadAll(r.Body)
		})
		waitPollerPanic(t, logs, "feed", "feed probe bug", "probePanicStore).FeedEnd")
		ps.feedEnd.Store(false)
		ps.hold.Store(false)
		close(ps.released)
		wg.Wait()
		if rerr != nil {
			t.Fatal(rerr)
		}
		var p map[string]any
		if res.Status != http.StatusInternalServerError || res.Header.Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(res.Body, &p) != nil || p["code"] != httpapi.CodeInternal {
			t.Fatalf("subscriber of a poller that panicked: %s %q, want 500 internal problem+json", res, res.Header.Get("Content-Type"))
		}
		// A new subscription starts a new poller, which tells it of an
		// event appended after.
		sub := subscribe(t, ts, "/v1/feeds/category/ppanic/subscribe?from=now", "Accept", "application/x-ndjson")
		if sub.res.StatusCode != http.StatusOK {
			t.Fatalf("subscribe again: %d", sub.res.StatusCode)
		}
		ts.MustAppend(t, "ppanic-2", 1)
		if e := sub.nextFeedEvent(t); e.Stream != "ppanic-2" || e.Version != 1 {
			t.Fatalf("got %s version %d, want ppanic-2 version 1", e.Stream, e.Version)
		}
	})
}
