package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// helperPanicStore is the real store whose ReadStream reads on a helper
// goroutine of the request (a fanout.Group), where fn panics with value,
// as a read's fan-out goroutine that panics does.
type helperPanicStore struct {
	log.Store
	value any
}

func (s helperPanicStore) ReadStream(ctx context.Context, rr log.ReadRange, fn func(*log.RecordedEvent) error) error {
	var (
		g   fanout.Group
		err error
	)
	g.Go(func() {
		err = s.Store.ReadStream(ctx, rr, func(*log.RecordedEvent) error { panic(s.value) })
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
		ts := MustServerWrapped(t, func(st log.Store) log.Store { return helperPanicStore{st, "read bug"} }, func(c *httpapi.Config) {
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
	t.Run("Abort", func(t *testing.T) {
		ts := MustServerWrapped(t, func(st log.Store) log.Store { return helperPanicStore{st, http.ErrAbortHandler} }, func(c *httpapi.Config) {
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
