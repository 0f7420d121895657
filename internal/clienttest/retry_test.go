package clienttest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
)

// appendsSeen counts the append requests that reached the proxy.
func appendsSeen(px *proxy) int {
	reqs, _ := px.Requests()
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// mustStoredOnce checks stream holds exactly the n events of one append.
func mustStoredOnce(t *testing.T, c *client.Client, stream string, res *client.AppendResult, n int) {
	t.Helper()
	p, err := c.Read(ctx(t), stream, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != n {
		t.Fatalf("%s holds %d events, want %d (stored exactly once)", stream, len(p.Events), n)
	}
	for i, e := range p.Events {
		if e.ID != res.Events[i].ID || e.Version != res.Events[i].Version {
			t.Fatalf("events[%d] = %s@%d, want %s@%d", i, e.ID, e.Version, res.Events[i].ID, res.Events[i].Version)
		}
	}
}

func TestRetry(t *testing.T) {
	srv := MustServer(t)
	ctx := ctx(t)
	evs := []client.EventData{{Type: "A", Data: 1}, {Type: "B", Data: 2}, {Type: "C", Data: 3}}

	// Each case injects its fault on the first requests of one append.
	for _, tc := range []struct {
		name     string
		expected client.ExpectedVersion
		fault    func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool
		attempts int
		dup      bool // the stored first attempt makes the answer a duplicate
	}{
		{"Unavailable", client.NoStream, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n <= 2 {
				Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
				return true
			}
			return false
		}, 3, false},
		{"BadGatewayPlain", client.Any, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				http.Error(w, "upstream gone", http.StatusBadGateway)
				return true
			}
			return false
		}, 2, false},
		{"DroppedBeforeForward", client.Any, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				Drop() // before forwarding: nothing stored
			}
			return false
		}, 2, false},
		{"OutcomeUnknownAfterStore", client.NoStream, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				if rec := p.Forward(r); rec.Code != http.StatusCreated {
					panic(rec.Body.String())
				}
				Problem(w, http.StatusGatewayTimeout, client.CodeOutcomeUnknown)
				return true
			}
			return false
		}, 2, true},
		{"AnswerLostExact", client.NoStream, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				p.Forward(r)
				Drop() // stored, then the connection drops before the answer
			}
			return false
		}, 2, true},
		{"AnswerLostAny", client.Any, func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n <= 2 {
				p.Forward(r) // the retry is a duplicate too, and its answer is lost as well
				Drop()
			}
			return false
		}, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "retry-" + strings.ToLower(tc.name)
			px := MustProxy(t, srv)
			c := MustClient(t, px.URL)
			px.SetFault(tc.fault)
			res, err := c.Append(ctx, stream, tc.expected, evs...)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendsSeen(px); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
			if res.Duplicate != tc.dup || res.FirstVersion != 1 || res.LastVersion != 3 {
				t.Fatalf("result %+v, want versions 1..3 with duplicate %v", res, tc.dup)
			}
			_, bodies := px.Requests()
			if !allEqual(bodies) {
				t.Fatalf("attempts sent different bodies (ids must be fixed before the first):\n%s", strings.Join(bodies, "\n"))
			}
			mustStoredOnce(t, c, stream, res, len(evs))
		})
	}

	t.Run("ErrUnavailableWhenSpent", func(t *testing.T) {
		px := MustProxy(t, srv)
		c := MustClient(t, px.URL)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
			return true
		})
		_, err := c.Append(ctx, "retry-spent", client.Any, evs...)
		if !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrOutcomeUnknown) {
			t.Fatalf("err %v, want ErrUnavailable and not ErrOutcomeUnknown", err)
		}
		if got := appendsSeen(px); got != fastRetry.MaxAttempts {
			t.Fatalf("%d attempts, want %d", got, fastRetry.MaxAttempts)
		}
	})
	t.Run("ErrOutcomeUnknownWhenSpentAfterLostAnswer", func(t *testing.T) {
		px := MustProxy(t, srv)
		c := MustClient(t, px.URL)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				p.Forward(r)
				Drop()
			}
			Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
			return true
		})
		_, err := c.Append(ctx, "retry-unknown", client.Any, evs...)
		if !errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err %v, want ErrOutcomeUnknown (the first attempt was stored) as well as ErrUnavailable", err)
		}
	})
	t.Run("NoRetryWithMaxAttempts1", func(t *testing.T) {
		px := MustProxy(t, srv)
		c, err := client.New(client.Options{BaseURL: px.URL, Retry: client.RetryPolicy{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			Problem(w, http.StatusGatewayTimeout, client.CodeOutcomeUnknown)
			return true
		})
		if _, err := c.Append(ctx, "retry-once", client.Any, evs...); !errors.Is(err, client.ErrOutcomeUnknown) {
			t.Fatalf("err %v, want ErrOutcomeUnknown", err)
		}
		if got := appendsSeen(px); got != 1 {
			t.Fatalf("%d attempts, want 1", got)
		}
	})
	t.Run("ContextCanceledDuringBackoff", func(t *testing.T) {
		px := MustProxy(t, srv)
		c, err := client.New(client.Options{BaseURL: px.URL,
			Retry: client.RetryPolicy{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
			return true
		})
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Append(cctx, "retry-ctx", client.Any, evs...)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err %v, want the deadline and the last problem", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c := MustClient(t, "http://"+addr)
		_, err = c.Append(ctx, "s-1", client.Any, evs...)
		if err == nil || errors.Is(err, client.ErrOutcomeUnknown) {
			t.Fatalf("err %v, want a failure that is not ErrOutcomeUnknown (nothing was sent)", err)
		}
		if !strings.Contains(err.Error(), "5 attempts") {
			t.Fatalf("err %v, want it retried 5 times", err)
		}
	})
	t.Run("ReadRetried", func(t *testing.T) {
		px := MustProxy(t, srv)
		c := MustClient(t, px.URL)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				Drop()
			}
			if n == 2 {
				Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
				return true
			}
			return false
		})
		p, err := c.Read(ctx, "retry-unavailable", client.ReadOptions{})
		if err != nil || !slices.Equal(versions(p.Events), []int64{1, 2, 3}) {
			t.Fatalf("read %+v, %v", p, err)
		}
		if reqs, _ := px.Requests(); len(reqs) != 3 {
			t.Fatalf("%d attempts, want 3", len(reqs))
		}
	})
	t.Run("ProbesNotRetried", func(t *testing.T) {
		px := MustProxy(t, srv)
		c := MustClient(t, px.URL)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
			return true
		})
		if err := c.Ready(ctx); !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("ready: %v, want ErrUnavailable", err)
		}
		if reqs, _ := px.Requests(); len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
	})
	t.Run("TimeoutRetried", func(t *testing.T) {
		// The per-attempt timeout is long enough for any retry against the
		// real store, even on a loaded machine; only the first attempt
		// times out, because the proxy holds it until the client gives up.
		const timeout = 5 * time.Second
		px := MustProxy(t, srv)
		c, err := client.New(client.Options{BaseURL: px.URL, Retry: fastRetry,
			HTTPClient: &http.Client{Timeout: timeout}})
		if err != nil {
			t.Fatal(err)
		}
		// The held first attempt is forwarded only once released, after the
		// retry was stored, so it lands late, as a duplicate; first is
		// closed when it has been answered. Cleanup releases it too (before
		// the proxy closes: cleanups run last first), should the test stop
		// early.
		release, first := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		unhold := func() { releaseOnce.Do(func() { close(release) }) }
		t.Cleanup(unhold)
		var late *httptest.ResponseRecorder
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n != 1 {
				return false
			}
			defer close(first)
			select {
			case <-r.Context().Done(): // the client timed out and hung up
			case <-release:
				return true
			}
			<-release
			late = p.Forward(r.WithContext(context.WithoutCancel(r.Context())))
			return true
		})
		start := time.Now()
		res, err := c.Append(ctx, "retry-timeout", client.Any, evs...)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < timeout {
			t.Fatalf("append returned after %v, before the first attempt could time out (%v)", d, timeout)
		}
		if got := appendsSeen(px); got != 2 {
			t.Fatalf("%d attempts, want 2 (only the first times out)", got)
		}
		if res.Duplicate {
			t.Fatalf("result %+v is a duplicate, want the retry to store the events", res)
		}
		unhold()
		select {
		case <-first:
		case <-time.After(time.Minute):
			t.Fatal("the held first attempt was not answered")
		}
		if late == nil || late.Code != http.StatusOK {
			t.Fatalf("late first attempt: %+v, want 200 (a duplicate of the retry)", late)
		}
		mustStoredOnce(t, c, "retry-timeout", res, len(evs))
	})
}

func allEqual(s []string) bool {
	for _, x := range s {
		if x != s[0] {
			return false
		}
	}
	return true
}

// TestRetryRefusedAfterUnknown: a write whose first attempt may have been
// applied (its answer was lost) and whose retry is refused for good says
// both: the refusal, and ErrOutcomeUnknown, as RetryPolicy.do promises.
// A group deleted by the first attempt made the retry 404
// group_not_found, returned alone: the caller was told the group had
// never been there, and not that its delete may have happened.
func TestRetryRefusedAfterUnknown(t *testing.T) {
	url, _ := MustGroupServer(t)
	if _, err := MustClient(t, url).JoinGroup(ctx(t), "gone", client.JoinOptions{Feed: client.AllFeed, Member: "m"}); err != nil {
		t.Fatal(err)
	}
	px := MustProxy(t, url)
	px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			p.Forward(r) // deleted; the answer never arrives
			Drop()
		}
		return false
	})
	err := MustClient(t, px.URL).DeleteGroup(ctx(t), "gone")
	if !errors.Is(err, client.ErrGroupNotFound) || !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("delete whose answer was lost, then 404 on its retry: %v; want group_not_found and outcome unknown", err)
	}
}
