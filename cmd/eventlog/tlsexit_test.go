package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestExitCertificateUnverified: a server whose certificate does not verify
// (here a CA the system does not trust) is a configuration problem, exit 1,
// for reads and writes alike, after one attempt: no request was sent, and
// another attempt fails the same way. It was exit 4, "try again later"
// (an append's exit 6, "outcome unknown"), after every retry.
func TestExitCertificateUnverified(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes the client refuses
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for _, args := range [][]string{
		{"streams", "info", "user-1"},
		{"append", "user-1", "--type", "X", "--data", "1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			before := conns.Load()
			r := runCLI(t, nil, "", append([]string{"--url", srv.URL}, args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "certificate") {
				t.Fatalf("exit %d, want %d (exitUsage), stderr: %s", r.code, exitUsage, r.stderr)
			}
			if n := conns.Load() - before; n != 1 {
				t.Fatalf("%d connections, want 1: a certificate that does not verify was retried", n)
			}
		})
	}
}
