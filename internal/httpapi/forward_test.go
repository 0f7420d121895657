package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// TestForwardOverTLS: a forward goes to an https:// peer over TLS with its
// certificate verified; a peer whose certificate does not verify, or one
// that advertises plain HTTP to an instance that requires TLS, gets
// nothing — and the append is "not applied" (unavailable), never an
// unknown outcome, because the owner cannot have seen it.
func TestForwardOverTLS(t *testing.T) {
	var served atomic.Int64
	owner := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path != forwardPath || r.Header.Get("Authorization") != "Bearer tok" {
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
		fwd := Forwarder(Peers{Client: trusting(owner.Certificate()), RequireTLS: true})
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
		{"UntrustedCertificate", Peers{Client: trusting(), RequireTLS: true}, PeerAddress(hostport, true)},
		{"PlainPeerRefused", Peers{Client: trusting(owner.Certificate()), RequireTLS: true}, strings.TrimPrefix(plain.URL, "http://")},
		{"PlainPeerRefusedWithScheme", Peers{Client: trusting(owner.Certificate()), RequireTLS: true}, plain.URL},
		{"HTTPToTLSPeer", Peers{Client: trusting(owner.Certificate())}, "http://" + hostport},
		{"TLSToPlainPeer", Peers{Client: trusting(owner.Certificate())}, "https://" + strings.TrimPrefix(plain.URL, "http://")},
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
}
