package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestSubscriptionEndsWithItsKey: a revocation or expiry takes effect
// within the key refresh (README), also on the live subscriptions the key
// opened before: they end rather than stream on, and the reconnection is
// refused.
func TestSubscriptionEndsWithItsKey(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, func(c *httpapi.Config) {
		c.SubscribePoll, c.Heartbeat = 100*time.Millisecond, 300*time.Millisecond
	})
	root := as.MustToken(t, "root", 0, "admin")
	reader := as.MustToken(t, "reader", 0, "read:*")
	post := func(data string) {
		t.Helper()
		if r := as.As(t, root, "POST", "/v1/streams/revoked-1/events", `{"events":[{"type":"t","data":`+data+`}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append: %s", r)
		}
	}
	post("1")
	paths := []string{"/v1/streams/revoked-1/subscribe", "/v1/feeds/all/subscribe"}
	subs := make([]*subscription, len(paths))
	for i, path := range paths {
		subs[i] = subscribe(t, as.testServer, path, "Authorization", reader)
		if m := subs[i].nextEvent(t); m.event.Version != 1 {
			t.Fatalf("%s: got %+v, want version 1", path, m.event)
		}
	}
	if r := as.As(t, root, "DELETE", "/v1/admin/keys/reader", ""); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	if err := as.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	post("2")
	for i, sub := range subs {
		lines := make(chan string, 16)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(sub.r)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					lines <- sc.Text()
				}
			}
		}()
		timeout := time.After(5 * time.Second)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read // ended
				}
				t.Errorf("%s: after the revocation the subscription sent %s", paths[i], l)
			case <-timeout:
				t.Errorf("%s: still open 5 s after the key was revoked", paths[i])
				sub.cancel()
				break read
			}
		}
		MustProblem(t, as.As(t, reader, "GET", paths[i], ""), http.StatusUnauthorized, "unauthenticated")
	}
}
