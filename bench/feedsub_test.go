package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

func TestParseFeedLine(t *testing.T) {
	id := "0190a1b2-0000-7000-8000-000000000001"
	t.Run("Event", func(t *testing.T) {
		line := `{"position":"AQoB","stream":"bench-s-1","id":"` + id + `","type":"OrderPlaced","version":7,"time":"2026-11-22T10:47:30.368Z","data":{"order_id":"o-1","items":[{"id":"x"}]},"metadata":{"correlation_id":"c"}}` + "\r\n"
		ev, ok, err := parseFeedLine([]byte(line))
		if err != nil || !ok {
			t.Fatalf("got ok %v, err %v", ok, err)
		}
		want := feedLine{Position: "AQoB", Stream: "bench-s-1", ID: uuid.MustParse(id), Type: "OrderPlaced", Version: 7}
		if ev != want {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
	})
	for name, line := range map[string]string{
		"Blank":           "",
		"Newline":         "\n",
		"Spaces":          "  \t\n",
		"HeartbeatObject": `{"heartbeat":"2026-11-22T10:47:30Z"}`,
		"EmptyObject":     "{}",
		"SSEComment":      ": heartbeat",
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok, err := parseFeedLine([]byte(line)); ok || err != nil {
				t.Fatalf("got ok %v, err %v; want a skipped line", ok, err)
			}
		})
	}
	for name, line := range map[string]string{
		"Truncated":   `{"position":"AQoB","stream":"s","id":"` + id + `","ver`,
		"BadID":       `{"position":"AQoB","stream":"s","id":"42","version":1}`,
		"NoVersion":   `{"position":"AQoB","stream":"s","id":"` + id + `"}`,
		"NoPosition":  `{"stream":"s","id":"` + id + `","version":1}`,
		"NoStream":    `{"position":"AQoB","id":"` + id + `","version":1}`,
		"NilID":       `{"position":"AQoB","stream":"s","id":"00000000-0000-0000-0000-000000000000","version":1}`,
		"NotAnObject": `["id"]`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok, err := parseFeedLine([]byte(line)); ok || err == nil {
				t.Fatalf("got ok %v, err %v; want an error", ok, err)
			}
		})
	}
}

func TestParseFeedFlag(t *testing.T) {
	for _, c := range []struct {
		flag string
		want log.Feed
		path string
	}{
		{"all", log.AllFeed, "/v1/feeds/all/subscribe?from=now"},
		{"category/orders", log.CategoryFeed("orders"), "/v1/feeds/category/orders/subscribe?from=now"},
		{"type/OrderPlaced", log.TypeFeed("OrderPlaced"), "/v1/feeds/type/OrderPlaced/subscribe?from=now"},
	} {
		f, err := parseFeedFlag(c.flag)
		if err != nil || f != c.want {
			t.Fatalf("%s: got %+v %v, want %+v", c.flag, f, err, c.want)
		}
		if got := feedSubscribePath(f, "now"); got != c.path {
			t.Fatalf("%s: path %q, want %q", c.flag, got, c.path)
		}
	}
	if got, want := feedSubscribePath(log.AllFeed, "AQ+/="), "/v1/feeds/all/subscribe?from=AQ%2B%2F%3D"; got != want {
		t.Fatalf("resume path %q, want %q", got, want)
	}
	for _, bad := range []string{"", "all/x", "category/", "category/a-b", "type/Nope", "streams/x", "category/" + strings.Repeat("c", maxCategoryLen+1)} {
		if _, err := parseFeedFlag(bad); err == nil {
			t.Fatalf("%q: accepted", bad)
		}
	}
}

func TestSubscribePrefix(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, f := range []log.Feed{log.AllFeed, log.CategoryFeed("orders"), log.CategoryFeed(strings.Repeat("c", maxCategoryLen)), log.TypeFeed("ItemAdded")} {
		name := streamName(subscribePrefix(f, at), 9_999_999)
		id, err := log.ParseStreamID(name)
		if err != nil {
			t.Fatalf("%s: stream %q: %v", f, name, err)
		}
		if f.Kind == log.FeedCategory && id.Category() != f.Name {
			t.Fatalf("%s: stream %q is in category %q", f, name, id.Category())
		}
	}
	if !feedExpects(log.TypeFeed("ItemAdded"), "ItemAdded") || feedExpects(log.TypeFeed("ItemAdded"), "OrderPlaced") || !feedExpects(log.AllFeed, "OrderPlaced") {
		t.Fatal("feedExpects")
	}
}

// TestFeedSubscriber serves the subscription contract from a fake: NDJSON
// events with heartbeats between them, a response that ends mid-way (the
// subscriber must resume after the last position it saw), and checks what
// reached the tracker.
func TestFeedSubscriber(t *testing.T) {
	ids := make([]uuid.UUID, 4)
	evs := make([]*payload, 4)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		evs[i] = &payload{Type: "OrderPlaced", Data: []byte(`{}`)}
	}
	line := func(i int) string {
		return fmt.Sprintf(`{"position":"p%d","stream":"bench-s-1","id":"%s","type":"OrderPlaced","version":%d,"time":"2026-11-22T10:00:00Z","data":{}}`+"\n", i, ids[i], i+1)
	}
	var (
		mu    sync.Mutex
		froms []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/feeds/all/subscribe" || r.Header.Get("Accept") != "application/x-ndjson" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		froms = append(froms, r.URL.Query().Get("from"))
		n := len(froms)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		switch n {
		case 1: // two events and a heartbeat, then the response ends
			fmt.Fprint(w, line(0), "\n", line(1))
		case 2: // resumed after p1
			fmt.Fprint(w, line(2), `{"heartbeat":true}`+"\n", line(3))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			<-r.Context().Done()
		}
	}))
	defer srv.Close()

	d := newDeliveries(1, func(string) bool { return true })
	d.sent(ids, evs, time.Now())
	d.acknowledged(ids, time.Now())
	s := &feedSubscriber{client: newHTTPClient(1), base: srv.URL, feed: log.AllFeed, track: d, connected: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	if !d.wait(t.Context(), 10*time.Second) {
		t.Fatal("not every event arrived")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(froms) != 2 || froms[0] != "now" || froms[1] != "p1" {
		t.Fatalf("subscriptions from %q, want now then p1", froms)
	}
	if s.reconnects != 1 {
		t.Fatalf("%d reconnects, want 1", s.reconnects)
	}
	tally := d.record(time.Time{}, newRecorder(time.Now()), newRecorder(time.Now()))
	if !tally.ok() || tally.delivered != 4 || tally.acked != 4 {
		t.Fatalf("tally %+v", tally)
	}
}

func TestFeedSubscriberRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"not_found","detail":"no route"}`)
	}))
	defer srv.Close()
	s := &feedSubscriber{client: newHTTPClient(1), base: srv.URL, feed: log.AllFeed, track: newDeliveries(1, nil), connected: make(chan struct{})}
	err := s.run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("got %v, want the 404", err)
	}
}
