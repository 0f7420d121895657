package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/partition"
)

// flushTamper is a transport that changes every forwarded flush it sends
// with mutate (under mu) and counts them.
type flushTamper struct {
	mu      sync.Mutex
	mutate  func(r *http.Request)
	flushes atomic.Int64
}

func (t *flushTamper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/internal/v1/flush" {
		t.flushes.Add(1)
		t.mu.Lock()
		if t.mutate != nil {
			r = r.Clone(r.Context())
			t.mutate(r)
		}
		t.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (t *flushTamper) set(mutate func(r *http.Request)) {
	t.mu.Lock()
	t.mutate = mutate
	t.mu.Unlock()
}

// TestForwardedFlushRefused: a read on an instance that does not own the
// stream's shard asks the owner to flush the stream first. The owner's
// refusal of the client's key (401, or 403 for its scopes) reached the
// client as 503 unavailable, after the store had asked again and again
// for its retry deadline (10 s); a refusal of the forwarding instance's
// signature (a configuration error between instances) was retried as
// long. Now the client's key refused is the client's 401 or 403, the
// signature refused is 503 unavailable, each after one flush request.
func TestForwardedFlushRefused(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	appendOnly := base.MustToken(t, "append-only", 0, "append:*")
	o := base.Opts
	a := httpInstance(t, o, nil)
	base.Store.Close()
	tamper := &flushTamper{}
	b := httpInstanceVia(t, o, tamper, nil)
	for _, x := range []*authServer{a, b} {
		if err := x.Auth.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stream := ownedStream(t, a.Store, o.Cassandra.Shards, "flushed")
	if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
		t.Skip("b took the stream's shard")
	}
	if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":1}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append through the owner: %s", r)
	}
	if r := b.As(t, root, "GET", "/v1/streams/"+stream+"/events", ""); r.Status != http.StatusOK {
		t.Fatalf("read through b: %s", r)
	}
	for _, c := range []struct {
		name      string
		mutate    func(r *http.Request)
		status    int
		code      string
		challenge string
	}{
		// The owner's copy of the keys no longer knows the token (revoked
		// there first): the client's key refused.
		{"KeyRefused", func(r *http.Request) { r.Header.Set("Authorization", "Bearer el_unknown0000000000000000000000") },
			http.StatusUnauthorized, "unauthenticated", "invalid_token"},
		{"ScopeRefused", func(r *http.Request) { r.Header.Set("Authorization", appendOnly) },
			http.StatusForbidden, "forbidden", "insufficient_scope"},
		// The forwarding instance's signature refused (clocks apart, say).
		{"SignatureRefused", func(r *http.Request) { r.Header.Set("Eventlog-Peer-Signature", "t=1,h=x,s=y") },
			http.StatusServiceUnavailable, "unavailable", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tamper.set(c.mutate)
			defer tamper.set(nil)
			before := tamper.flushes.Load()
			r := b.As(t, root, "GET", "/v1/streams/"+stream+"/events", "")
			MustProblem(t, r, c.status, c.code)
			if ch := r.Header.Get("WWW-Authenticate"); c.challenge != "" && !strings.Contains(ch, c.challenge) {
				t.Errorf("WWW-Authenticate %q, want %s", ch, c.challenge)
			}
			if n := tamper.flushes.Load() - before; n != 1 {
				t.Errorf("%d flush requests to the owner, want 1 (a refusal is not cured by asking again)", n)
			}
		})
	}
}
