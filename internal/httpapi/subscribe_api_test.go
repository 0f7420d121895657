package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// subscription reads a live subscription's messages.
type subscription struct {
	res    *http.Response
	r      *bufio.Reader
	sse    bool
	cancel context.CancelFunc
}

type subMsg struct {
	id        string
	event     eventJSON
	data      string // the event's JSON as sent
	hasID     bool   // an id: line came (maybe without data: a position only)
	heartbeat bool
}

func subscribe(tb testing.TB, ts *testServer, path string, header ...string) *subscription {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	sub := &subscription{res: res, r: bufio.NewReader(res.Body), sse: !strings.Contains(req.Header.Get("Accept"), "ndjson"), cancel: cancel}
	tb.Cleanup(func() { cancel(); res.Body.Close() })
	return sub
}

// next reads the next message, failing the test after timeout.
func (s *subscription) next(tb testing.TB, timeout time.Duration) subMsg {
	tb.Helper()
	type result struct {
		m   subMsg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var m subMsg
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if !s.sse {
				if line == "" {
					ch <- result{m: subMsg{heartbeat: true}}
					return
				}
				m.data = line
				err := json.Unmarshal([]byte(line), &m.event)
				ch <- result{m: m, err: err}
				return
			}
			switch {
			case strings.HasPrefix(line, ": heartbeat"):
				m.heartbeat = true
			case strings.HasPrefix(line, "id: "), line == "id:":
				m.id = strings.TrimPrefix(strings.TrimPrefix(line, "id:"), " ")
				m.hasID = true
			case strings.HasPrefix(line, "data: "):
				m.data = strings.TrimPrefix(line, "data: ")
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m.event); err != nil {
					ch <- result{err: err}
					return
				}
			case strings.HasPrefix(line, "retry: "):
			case line == "":
				if m.heartbeat || m.hasID {
					ch <- result{m: m}
					return
				}
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatalf("subscription: %v", r.err)
		}
		return r.m
	case <-time.After(timeout):
		tb.Fatalf("no message within %v", timeout)
		return subMsg{}
	}
}

// nextEvent skips heartbeats, failing the test after 30 s without an
// event (heartbeats alone would keep it waiting for ever).
func (s *subscription) nextEvent(tb testing.TB) subMsg {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := s.next(tb, 10*time.Second); !m.heartbeat {
			return m
		}
	}
	tb.Fatalf("no event within 30s, only heartbeats")
	return subMsg{}
}

func TestSubscribe(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) {
		c.SubscribePoll = 100 * time.Millisecond
		c.Heartbeat = 300 * time.Millisecond
	})

	t.Run("CatchUpThenLive", func(t *testing.T) {
		ts.MustAppend(t, "sub-1", 5)
		sub := subscribe(t, ts, "/v1/streams/sub-1/subscribe")
		if ct := sub.res.Header.Get("Content-Type"); ct != "text/event-stream" || sub.res.StatusCode != 200 {
			t.Fatalf("status %d, content type %q", sub.res.StatusCode, ct)
		}
		for v := int64(1); v <= 5; v++ {
			m := sub.nextEvent(t)
			if m.id != strconv.FormatInt(v, 10) || m.event.Version != v {
				t.Fatalf("catch-up: got id %s version %d, want %d", m.id, m.event.Version, v)
			}
		}
		// Live, through this instance: woken at once (this server polls
		// only hourly, so the event cannot come from polling).
		lazy := MustServer(t, func(c *httpapi.Config) { c.SubscribePoll = time.Hour; c.Heartbeat = time.Hour })
		lazy.MustAppend(t, "wake-1", 1)
		lsub := subscribe(t, lazy, "/v1/streams/wake-1/subscribe")
		if m := lsub.nextEvent(t); m.event.Version != 1 { // caught up: now waiting
			t.Fatalf("catch-up: %+v", m)
		}
		lazy.MustAppend(t, "wake-1", 1)
		if m := lsub.nextEvent(t); m.event.Version != 2 {
			t.Fatalf("local wake-up: %+v", m)
		}
		ts.MustAppend(t, "sub-1", 2)
		// Live, through another instance: found by polling.
		oo := ts.Opts
		oo.Cassandra.Registerer = nil // its own metrics would clash with ts's
		other := shardstoretest.Reopen(t, oo)
		if _, err := other.Append(context.Background(), log.AppendRequest{Stream: "sub-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "Other", Data: json.RawMessage(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		for v := int64(6); v <= 8; v++ {
			if m := sub.nextEvent(t); m.event.Version != v {
				t.Fatalf("live: version %d, want %d", m.event.Version, v)
			}
		}
	})

	t.Run("ResumeFromLastEventID", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/streams/sub-1/subscribe", "Last-Event-ID", "6")
		for v := int64(7); v <= 8; v++ {
			if m := sub.nextEvent(t); m.event.Version != v || m.id != fmt.Sprint(v) {
				t.Fatalf("resume: %+v, want %d", m, v)
			}
		}
		if m := sub.next(t, 5*time.Second); !m.heartbeat {
			t.Fatalf("expected a heartbeat when idle, got %+v", m)
		}
	})

	t.Run("NDJSONFromAndHeartbeat", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/streams/sub-1/subscribe?from=8", "Accept", "application/x-ndjson")
		if m := sub.nextEvent(t); m.event.Version != 8 {
			t.Fatalf("from=8: %+v", m)
		}
		if m := sub.next(t, 5*time.Second); !m.heartbeat {
			t.Fatalf("expected a blank-line heartbeat, got %+v", m)
		}
	})

	t.Run("WaitsForANewStream", func(t *testing.T) {
		sub := subscribe(t, ts, "/v1/streams/later-1/subscribe")
		time.Sleep(200 * time.Millisecond)
		ts.MustAppend(t, "later-1", 1)
		if m := sub.nextEvent(t); m.event.Version != 1 {
			t.Fatalf("new stream: %+v", m)
		}
	})

	t.Run("BadResumePoint", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/sub-1/subscribe", nil, "Last-Event-ID", "x"), 400, "invalid_request")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/sub-1/subscribe?from=0", nil), 400, "invalid_request")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/bad%20id/subscribe", nil), 400, "invalid_stream_id")
	})
}
