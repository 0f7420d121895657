package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// TestForwardNoRedirect: a peer address that answers a forward or a flush
// with a redirect (a stale address now served by a proxy that sends
// HTTP on to HTTPS, or anything else) is not followed: a forward's body
// carries its clients' bearer tokens, and a 307 or 308 would send it,
// signed, to wherever the answer points, in the clear too under
// RequireTLS, which only the first address was checked against.
func TestForwardNoRedirect(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer target.Close()
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, status)
		}))
		defer redirector.Close()
		peers := Peers{Client: redirector.Client(), RequireTLS: true, Key: func() []byte { return []byte("0123456789abcdef0123456789abcdef") }}
		ctx := context.WithValue(context.Background(), bearerKey{}, "Bearer evl_secret")
		address := PeerAddress(strings.TrimPrefix(redirector.URL, "https://"), true)
		req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "T", Data: []byte(`{}`)}}}
		// Not applied (no instance acted on it): the append may go to the
		// owner the store reads next, never an unknown outcome.
		if _, err := Forwarder(peers)(ctx, address, req); !errors.Is(err, log.ErrUnavailable) || errors.Is(err, log.ErrOutcomeUnknown) {
			t.Errorf("%d: forward answered by a redirect: %v, want unavailable", status, err)
		}
		if err := FlushForwarder(peers)(ctx, address, "s-1"); !errors.Is(err, log.ErrUnavailable) {
			t.Errorf("%d: flush answered by a redirect: %v, want unavailable", status, err)
		}
		if n := elsewhere.Load(); n != 0 {
			t.Fatalf("%d: the redirect was followed: %d requests reached its target", status, n)
		}
	}
}
