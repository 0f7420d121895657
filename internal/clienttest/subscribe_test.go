package clienttest_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
)

// collectLive reads n events from a subscription (to a stream or a feed),
// failing after timeout.
func collectLive[E any](tb testing.TB, seq func(func(E, error) bool), n int, timeout time.Duration) []E {
	tb.Helper()
	got := make(chan []E, 1)
	errc := make(chan error, 1)
	go func() {
		var evs []E
		for ev, err := range seq {
			if err != nil {
				errc <- err
				return
			}
			if evs = append(evs, ev); len(evs) == n {
				break
			}
		}
		got <- evs
	}()
	select {
	case evs := <-got:
		return evs
	case err := <-errc:
		tb.Fatalf("subscription: %v", err)
	case <-time.After(timeout):
		tb.Fatalf("fewer than %d events within %v", n, timeout)
	}
	return nil
}

func TestSubscribe(t *testing.T) {
	url := MustServer(t)
	c := MustClient(t, url)
	// appendN appends n events to live-1; it may run on any goroutine.
	appendN := func(ctx context.Context, n int) error {
		for i := 0; i < n; i++ {
			if _, err := c.Append(ctx, "live-1", client.Any, client.EventData{Type: "E", Data: map[string]int{"i": i}}); err != nil {
				return err
			}
		}
		return nil
	}

	t.Run("CatchUpThenLive", func(t *testing.T) {
		if err := appendN(ctx(t), 3); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx(t), time.Minute)
		defer cancel()
		// Two more events are appended only once the first three were
		// received, so they can only arrive live.
		appended := make(chan error, 1)
		var evs []client.Event
		for ev, err := range c.Subscribe(sctx, "live-1", client.SubscribeOptions{}) {
			if err != nil {
				t.Fatalf("subscription: %v", err)
			}
			evs = append(evs, ev)
			if len(evs) == 3 {
				go func() {
					err := appendN(sctx, 2)
					if err != nil {
						cancel() // end the loop: nothing more will come
					}
					appended <- err
				}()
			}
			if len(evs) == 5 {
				break
			}
		}
		if len(evs) == 5 {
			if err := <-appended; err != nil {
				t.Fatalf("append while subscribed: %v", err)
			}
		} else {
			select {
			case err := <-appended:
				t.Fatalf("subscription ended after %d events (append while subscribed: %v)", len(evs), err)
			default:
				t.Fatalf("subscription ended after %d events, want 5: %v", len(evs), sctx.Err())
			}
		}
		for i, ev := range evs {
			if ev.Version != int64(i+1) || ev.Stream != "live-1" {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
	})

	t.Run("EndsWithTheContext", func(t *testing.T) {
		// The subscription is cancelled once its one event (version 5, the
		// last) has arrived: the loop then ends, without an error, at once.
		sctx, cancel := context.WithTimeout(ctx(t), time.Minute)
		defer cancel()
		var (
			evs      []client.Event
			canceled time.Time
		)
		for ev, err := range c.Subscribe(sctx, "live-1", client.SubscribeOptions{From: 5}) {
			if err != nil {
				t.Fatalf("error at the end of the context: %v", err)
			}
			evs = append(evs, ev)
			if len(evs) == 1 {
				canceled = time.Now()
				cancel()
			}
		}
		if len(evs) != 1 || evs[0].Version != 5 {
			t.Fatalf("got %+v from version 5, want the one event at version 5 (%v)", evs, sctx.Err())
		}
		if d := time.Since(canceled); d > 10*time.Second {
			t.Fatalf("the loop ended %v after the context was cancelled", d)
		}
	})

	t.Run("ResumesAfterACut", func(t *testing.T) {
		// The first connection is cut after two events; the client
		// reconnects and resumes after the last version it yielded.
		target, _ := urlParse(url)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.FlushInterval = -1
		var (
			first atomic.Bool
			mu    sync.Mutex
			froms []string
		)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			froms = append(froms, r.URL.Query().Get("from"))
			mu.Unlock()
			if strings.HasSuffix(r.URL.Path, "/subscribe") && first.CompareAndSwap(false, true) {
				req, _ := http.NewRequestWithContext(r.Context(), "GET", url+r.URL.RequestURI(), nil)
				req.Header = r.Header.Clone()
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					panic(http.ErrAbortHandler)
				}
				defer res.Body.Close()
				w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
				br := bufio.NewReader(res.Body)
				for sent := 0; sent < 2; {
					line, err := br.ReadString('\n')
					if err != nil {
						break
					}
					w.Write([]byte(line))
					w.(http.Flusher).Flush()
					if strings.TrimSpace(line) != "" {
						sent++
					}
				}
				panic(http.ErrAbortHandler)
			}
			rp.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		pc := MustClient(t, proxy.URL)
		sctx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		evs := collectLive(t, pc.Subscribe(sctx, "live-1", client.SubscribeOptions{}), 5, 15*time.Second)
		for i, ev := range evs {
			if ev.Version != int64(i+1) {
				t.Fatalf("after the cut: event %d has version %d", i, ev.Version)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(froms) < 2 || froms[0] != "1" || froms[1] != "3" {
			t.Fatalf("requests asked from %v, want 1 then 3", froms)
		}
	})

	t.Run("InvalidStreamEnds", func(t *testing.T) {
		for _, err := range c.Subscribe(ctx(t), "bad id", client.SubscribeOptions{}) {
			var p *client.Problem
			if !errors.As(err, &p) || p.Code != "invalid_stream_id" {
				t.Fatalf("got %v", err)
			}
		}
	})
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }
