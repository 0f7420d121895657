package httpapi_test

import (
	"io"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestDrainEndsIdleSubscriptions: Drain (http.Server.Shutdown calls it)
// ends the live subscriptions that are waiting for events at once, not at
// their next heartbeat or event: until they end, a graceful shutdown waits
// for them (and cuts them at --shutdown-timeout).
func TestDrainEndsIdleSubscriptions(t *testing.T) {
	ts := MustFeedServer(t, func(c *httpapi.Config) {
		c.SubscribePoll = 100 * time.Millisecond
		c.Heartbeat = time.Hour
	})
	ts.MustAppend(t, "drain-1", 2)
	paths := []string{"/v1/streams/drain-1/subscribe", "/v1/feeds/all/subscribe"}
	subs := make([]*subscription, len(paths))
	for i, path := range paths {
		subs[i] = subscribe(t, ts, path)
		for range 2 {
			subs[i].nextEvent(t) // caught up: now idle
		}
	}
	time.Sleep(time.Second) // the pollers' first probes are done: nothing else comes
	ts.API.Drain()
	ended := make([]chan error, len(subs))
	for i, sub := range subs {
		ended[i] = make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, sub.r)
			ended[i] <- err
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for i, sub := range subs {
		select {
		case err := <-ended[i]:
			if err != nil {
				t.Errorf("%s: ended with %v, want a clean end", paths[i], err)
			}
		case <-time.After(time.Until(deadline)):
			t.Errorf("%s: still open 3 s after the drain", paths[i])
			sub.cancel()
		}
	}
	// A new subscription would end at once and its client reconnect
	// here in a loop: it is refused, so the client goes elsewhere.
	for _, path := range paths {
		MustProblem(t, ts.Do(t, "GET", path, nil), 503, "unavailable")
	}
}
