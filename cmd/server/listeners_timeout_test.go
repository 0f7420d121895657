package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestInternalListenersDropIdleConnections: the --metrics-listen and
// --pprof-listen listeners, which need no key, close a keep-alive
// connection left idle for --idle-timeout, as the API listener does; one
// that anyone reaching them may hold open for ever is a descriptor of the
// process's taken for good.
func TestInternalListenersDropIdleConnections(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o, "--auth=required", "--metrics-listen=127.0.0.1:0", "--pprof-listen=127.0.0.1:0", "--idle-timeout=1s")
	for name, addr := range map[string]string{"API": m.Addr(), "metrics": m.MetricsAddr(), "pprof": m.PprofAddr()} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			// Idle now: the server must close the connection.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = br.ReadByte()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s listener: a connection idle for 5 s is still open (--idle-timeout=1s)", name)
			}
		})
	}
}

// TestStreamedReadWithBodyKeepsReadTimeout: streamed responses (NDJSON
// replays, pages, state) lift the connection's read deadline, as their
// GET has been read; a GET that declares a body it never sends must not
// then hold its connection for ever (net/http waits for the rest of the
// body after the handler, to reuse the connection).
func TestStreamedReadWithBodyKeepsReadTimeout(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o, "--auth=off", "--read-timeout=1s")
	conn, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/streams/slow-1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	// Whatever the answer, the connection must end within the read
	// timeout and a margin.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a GET whose body never came holds its connection for 5 s (--read-timeout=1s)")
	}
}
