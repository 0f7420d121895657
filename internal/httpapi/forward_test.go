package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
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

// recordsTo is a slog handler that sends each record (its message and
// attributes) on ch.
type recordsTo chan map[string]any

func (h recordsTo) Enabled(context.Context, slog.Level) bool { return true }
func (h recordsTo) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordsTo) WithGroup(string) slog.Handler            { return h }
func (h recordsTo) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h <- m
	return nil
}

// roundTrip is an http.RoundTripper.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closePanics is a response body whose Close panics.
type closePanics struct{ io.Reader }

func (closePanics) Close() error { panic("close bug") }

// TestForwardQueuePanicWithNoCallerIsLogged: a panic of a forward request
// that no caller is left to raise (each was answered before it, or gave
// up once its append was sent) is logged at error level with its value
// and the stack where it happened. It was dropped without a trace.
func TestForwardQueuePanicWithNoCallerIsLogged(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{{Type: "T", Data: []byte(`{}`)}}}
	mustLogged := func(t *testing.T, logs recordsTo, value, frame string) {
		t.Helper()
		select {
		case m := <-logs:
			stack, _ := m["stack"].(string)
			if m["level"] != "ERROR" || m["panic"] != value || !strings.Contains(stack, frame) {
				t.Fatalf("logged %v; want the panic %q at error level with a stack through %s", m, value, frame)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the panic was not logged")
		}
	}

	t.Run("CallerGone", func(t *testing.T) {
		logs := make(recordsTo, 1)
		sent, release := make(chan struct{}), make(chan struct{})
		peers := Peers{Client: &http.Client{Timeout: 5 * time.Second}, Logger: slog.New(logs), Key: func() []byte {
			close(sent) // the append is sent: its request is being made
			<-release
			panic("key bug after the caller left")
		}}
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), bearerKey{}, "Bearer tok"))
		errc := make(chan error, 1)
		go func() {
			_, err := Forwarder(peers)(ctx, "127.0.0.1:1", req)
			errc <- err
		}()
		<-sent
		cancel()
		if err := <-errc; !errors.Is(err, log.ErrOutcomeUnknown) {
			t.Fatalf("caller that gave up: got %v, want ErrOutcomeUnknown", err)
		}
		close(release)
		mustLogged(t, logs, "key bug after the caller left", "httpapi.Peers.post")
	})

	t.Run("AllAnswered", func(t *testing.T) {
		logs := make(recordsTo, 1)
		// The owner's answer is read and handed out, then closing its
		// body panics.
		answer := `{"results":[{"problem":{"type":"about:blank","title":"Conflict","status":409,"code":"wrong_expected_version","current_version":3}}]}`
		client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: closePanics{strings.NewReader(answer)}, Request: r}, nil
		})}
		peers := Peers{Client: client, Logger: slog.New(logs), Key: func() []byte { return key }}
		ctx := context.WithValue(context.Background(), bearerKey{}, "Bearer tok")
		var wev *log.WrongExpectedVersionError
		if _, err := Forwarder(peers)(ctx, "127.0.0.1:1", req); !errors.As(err, &wev) || wev.Current != 3 {
			t.Fatalf("got %v, want the owner's wrong_expected_version", err)
		}
		mustLogged(t, logs, "close bug", "closePanics.Close")
	})
}
