package main

// TODO(merge): delete with consume.go.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
)

// TestFeedPollConsumer: events reach the handler in feed order, a failed
// one is retried before the next, and each read starts where the last
// ended.
func TestFeedPollConsumer(t *testing.T) {
	pages := map[string]client.FeedPage{
		"":   {Events: []client.FeedEvent{{Event: client.Event{Stream: "user-1", Version: 1}, Position: "p1"}, {Event: client.Event{Stream: "user-1", Version: 2}, Position: "p2"}}, Next: "p2"},
		"p2": {Events: []client.FeedEvent{{Event: client.Event{Stream: "user-2", Version: 1}, Position: "p3"}}, Next: "w3"},
		"w3": {Next: "w3"},
	}
	var (
		mu    sync.Mutex
		froms []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/feeds/category/user" || r.URL.Query().Get("limit") != "2" {
			http.Error(w, "bad request "+r.URL.String(), 400)
			return
		}
		from := r.URL.Query().Get("from")
		mu.Lock()
		froms = append(froms, from)
		mu.Unlock()
		json.NewEncoder(w).Encode(pages[from])
	}))
	defer ts.Close()

	p := &feedPollConsumer{BaseURL: ts.URL, HTTPClient: ts.Client(), Poll: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	failed := false
	err := p.Consume(ctx, "g", ConsumeOptions{Feed: client.CategoryFeed("user"), Batch: 2}, func(_ context.Context, ev client.FeedEvent) error {
		if ev.Position == "p2" && !failed {
			failed = true
			return errors.New("transient")
		}
		got = append(got, ev.Position)
		if len(got) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume = %v, want context.Canceled", err)
	}
	if want := []string{"p1", "p2", "p3"}; !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(froms) < 2 || froms[0] != "" || froms[1] != "p2" {
		t.Fatalf("reads from %v, want \"\" then p2", froms)
	}
}

// TestFeedPollConsumerNoFeeds: a server that does not serve feeds stops
// the consumer with an error that says so, instead of polling forever.
func TestFeedPollConsumerNoFeeds(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	p := &feedPollConsumer{BaseURL: ts.URL, HTTPClient: ts.Client(), Poll: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var perm *permanentError
	err := p.Consume(context.Background(), "g", ConsumeOptions{Feed: "all", Batch: 10}, func(context.Context, client.FeedEvent) error { return nil })
	if !errors.As(err, &perm) {
		t.Fatalf("Consume = %v, want a permanent error", err)
	}
}
