package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// TestForwardOverTLS: a forward goes to an https:// peer over TLS with its
// certificate verified; a peer whose certificate does not verify, or one
// that advertises plain HTTP to an instance that requires TLS, gets
// nothing — and the append is "not applied" (unavailable), never an
// unknown outcome, because the owner cannot have seen it.
func TestForwardOverTLS(t *testing.T) {
	var served atomic.Int64
	key := []byte("0123456789abcdef0123456789abcdef")
	keyed := func() []byte { return key }
	owner := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := checkPeerSignature(key, r.Header.Get(headerPeerSignature), r.Method, r.URL.Path, body, time.Now()); err != nil {
			writeProblem(w, newProblem(http.StatusForbidden, CodeForbidden, err.Error()))
			return
		}
		if r.URL.Path != forwardPath {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"results":[{"result":{"stream":"s-1","first_version":1,"last_version":1,"events":[],"time":"2026-12-04T00:00:00.000000Z","duplicate":false}}]}`))
	}))
	defer owner.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer plain.Close()

	trusting := func(certs ...*x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	hostport := strings.TrimPrefix(owner.URL, "https://")
	ctx := context.WithValue(context.Background(), bearerKey{}, "Bearer tok")
	req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "T", Data: []byte(`{}`)}}}

	t.Run("OK", func(t *testing.T) {
		fwd := Forwarder(Peers{Client: trusting(owner.Certificate()), RequireTLS: true, Key: keyed})
		res, err := fwd(ctx, PeerAddress(hostport, true), req)
		if err != nil || res.LastVersion != 1 {
			t.Fatalf("forward over TLS: %+v %v", res, err)
		}
	})
	for _, c := range []struct {
		name    string
		peers   Peers
		address string
	}{
		{"UntrustedCertificate", Peers{Client: trusting(), RequireTLS: true, Key: keyed}, PeerAddress(hostport, true)},
		{"PlainPeerRefused", Peers{Client: trusting(owner.Certificate()), RequireTLS: true, Key: keyed}, strings.TrimPrefix(plain.URL, "http://")},
		{"PlainPeerRefusedWithScheme", Peers{Client: trusting(owner.Certificate()), RequireTLS: true, Key: keyed}, plain.URL},
		{"HTTPToTLSPeer", Peers{Client: trusting(owner.Certificate()), Key: keyed}, "http://" + hostport},
		{"TLSToPlainPeer", Peers{Client: trusting(owner.Certificate()), Key: keyed}, "https://" + strings.TrimPrefix(plain.URL, "http://")},
		{"NoKey", Peers{Client: trusting(owner.Certificate()), RequireTLS: true}, PeerAddress(hostport, true)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := served.Load()
			_, err := Forwarder(c.peers)(ctx, c.address, req)
			if c.name == "HTTPToTLSPeer" {
				// A plain request reached a TLS port: Go's server answers
				// 400 without reading it, but this side cannot know that.
				if !errors.Is(err, log.ErrOutcomeUnknown) {
					t.Fatalf("got %v, want ErrOutcomeUnknown", err)
				}
				return
			}
			if !errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable (nothing sent)", err)
			}
			if got := served.Load() - before; got != 0 {
				t.Fatalf("the peer served %d requests", got)
			}
			if err := FlushForwarder(c.peers)(ctx, c.address, "s-1"); !errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("flush: %v, want ErrUnavailable", err)
			}
		})
	}
	// Signed with another key (an instance of another keyspace): the owner
	// refuses the request, and the appends were not applied.
	t.Run("WrongKey", func(t *testing.T) {
		other := func() []byte { return []byte("another key, another keyspace..") }
		before := served.Load()
		_, err := Forwarder(Peers{Client: trusting(owner.Certificate()), RequireTLS: true, Key: other})(ctx, PeerAddress(hostport, true), req)
		if !errors.Is(err, log.ErrUnavailable) || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("got %v, want ErrUnavailable: the signature does not match", err)
		}
		if served.Load() == before {
			t.Fatal("the owner saw no request: the refusal was not the owner's")
		}
	})
}

// TestPeerSignature: a signature holds for its method, path and body only,
// within peerSignatureSkew of the receiver's clock either way.
func TestPeerSignature(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_780_000_000, 0)
	body := []byte(`{"appends":[]}`)
	sig := PeerSignature(key, "POST", forwardPath, body, now)
	// sig with the digest of another body in place of body's.
	parts := strings.Split(sig, ",")
	parts[1] = strings.Split(PeerSignature(key, "POST", forwardPath, []byte("other"), now), ",")[1]
	otherDigest := strings.Join(parts, ",")
	if err := checkPeerSignature(key, sig, "POST", forwardPath, body, now.Add(peerSignatureSkew)); err != nil {
		t.Fatalf("the signature at the edge of the skew: %v", err)
	}
	if err := checkPeerSignature(key, sig, "POST", forwardPath, body, now.Add(-peerSignatureSkew)); err != nil {
		t.Fatalf("a signature from the receiver's future: %v", err)
	}
	for name, c := range map[string]struct {
		sig, method, path string
		body              []byte
		at                time.Time
		key               []byte
	}{
		"None":      {"", "POST", forwardPath, body, now, key},
		"Malformed": {"t=1,s=%%%", "POST", forwardPath, body, now, key},
		"NoTime":    {sig[strings.Index(sig, ",")+1:], "POST", forwardPath, body, now, key},
		// Another body's digest under this signature: the signature covers
		// the digest, so the header alone is refused.
		"OtherDigest": {otherDigest, "POST", forwardPath, body, now, key},
		"OtherBody":   {sig, "POST", forwardPath, []byte(`{"appends":[{}]}`), now, key},
		"OtherPath":   {sig, "POST", flushPath, body, now, key},
		"OtherVerb":   {sig, "PUT", forwardPath, body, now, key},
		"OtherKey":    {sig, "POST", forwardPath, body, now, []byte("fedcba9876543210fedcba9876543210")},
		"TooOld":      {sig, "POST", forwardPath, body, now.Add(peerSignatureSkew + time.Second), key},
		"TooNew":      {sig, "POST", forwardPath, body, now.Add(-peerSignatureSkew - time.Second), key},
	} {
		if err := checkPeerSignature(c.key, c.sig, c.method, c.path, c.body, c.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestForwardToRefusedConnection: an owner whose listener refuses the
// connection (stopping: its listener closed while it hands its shards
// over, or its process gone) gets nothing, and says so apart
// (log.ErrOwnerUnreachable, which the sequencer waits out for the owner it
// reads next); a dial that fails otherwise (no such host) is plainly
// unavailable, answered at once.
func TestForwardToRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	key := []byte("0123456789abcdef0123456789abcdef")
	peers := Peers{Client: &http.Client{Timeout: 5 * time.Second}, Key: func() []byte { return key }}
	ctx := context.WithValue(context.Background(), bearerKey{}, "Bearer tok")
	req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "T", Data: []byte(`{}`)}}}
	if _, err := Forwarder(peers)(ctx, closed, req); !errors.Is(err, log.ErrOwnerUnreachable) {
		t.Fatalf("refused: got %v, want ErrOwnerUnreachable", err)
	}
	_, err = Forwarder(peers)(ctx, "no-such-host.invalid:8080", req)
	if !errors.Is(err, log.ErrUnavailable) || errors.Is(err, log.ErrOwnerUnreachable) {
		t.Fatalf("no such host: got %v, want ErrUnavailable, not ErrOwnerUnreachable", err)
	}
}

// keyPanics is a Peers.Key that panics.
func keyPanics() []byte { panic("key bug") }

// TestForwardQueuePanicIsTheCallers: a panic of a forward request, sent on
// the owner's queue goroutine for the appends of several callers, is
// raised on each waiting caller's goroutine with its stack. It ended the
// process (the test binary crashed).
func TestForwardQueuePanicIsTheCallers(t *testing.T) {
	peers := Peers{Client: &http.Client{Timeout: 5 * time.Second}, Key: keyPanics}
	ctx := context.WithValue(context.Background(), bearerKey{}, "Bearer tok")
	req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "T", Data: []byte(`{}`)}}}
	var got any
	func() {
		defer func() { got = recover() }()
		_, _ = Forwarder(peers)(ctx, "127.0.0.1:1", req)
	}()
	p, ok := got.(*fanout.Panic)
	if !ok || p.Value != "key bug" || !strings.Contains(string(p.Stack), "httpapi.keyPanics(") {
		t.Fatalf("forward raised %v; want the queue's panic with its stack", got)
	}
}
