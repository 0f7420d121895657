package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// TestTLSHandshakeErrorsLogBounded: every failed TLS handshake on the
// API listener (anyone can cause one: a scanner, a client speaking plain
// HTTP) wrote a log line. Now N of them write a bounded number of lines,
// and eventlog_tls_handshake_errors_total counts them all.
func TestTLSHandshakeErrorsLogBounded(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	certFile, keyFile, _ := selfSigned(t, t.TempDir(), "flood")
	var logs syncBuffer
	m := mustRunMainLogged(t, o, slog.New(slog.NewJSONHandler(&logs, nil)),
		"--tls-cert-file="+certFile, "--tls-key-file="+keyFile, "--metrics-listen=127.0.0.1:0")
	const n = 60
	start := time.Now()
	for range n {
		// Plain HTTP to the TLS listener: a handshake that fails.
		if res, err := http.Get("http://" + m.Addr() + "/healthz"); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	metric := func() float64 {
		res, err := http.Get("http://" + m.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "eventlog_tls_handshake_errors_total "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	// The server logs a handshake after it answered the client.
	waitFor(t, 10*time.Second, "every handshake error counted", func() bool { return metric() == n })
	windows := int(time.Since(start)/httpapi.LogFloodWindow) + 1
	if got := logs.count("TLS handshake error"); got == 0 || got > windows*httpapi.LogFloodLines {
		t.Fatalf("%d failed handshakes: %d log lines, want 1 to %d", n, got, windows*httpapi.LogFloodLines)
	}
}
