package cassandratest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// FaultyDialer opens real connections to Cassandra whose traffic it can
// lose, as a network partition would: set it as cassandra.Options.Dialer.
type FaultyDialer struct {
	// DropRequests loses everything written to Cassandra (the request
	// never arrives).
	DropRequests atomic.Bool
	// DropResponses loses everything Cassandra answers (the request is
	// executed, its answer never arrives).
	DropResponses atomic.Bool
	// Refuse makes new connections fail.
	Refuse atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// DialContext implements the driver's Dialer.
func (d *FaultyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Refuse.Load() {
		return nil, errors.New("cassandratest: connection refused by the fault dialer")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return &faultyConn{Conn: c, d: d}, nil
}

// CloseAll closes every connection it opened.
func (d *FaultyDialer) CloseAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

type faultyConn struct {
	net.Conn
	d *FaultyDialer
}

func (c *faultyConn) Write(p []byte) (int, error) {
	if c.d.DropRequests.Load() {
		return len(p), nil // lost on the way
	}
	return c.Conn.Write(p)
}

func (c *faultyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.d.DropResponses.Load() {
			return n, err
		}
		// The answer was lost on the way back; keep waiting.
	}
}

// FaultySession connects to o's keyspace through a new FaultyDialer, with
// a 2 s query timeout, for tests that lose Cassandra's traffic: it returns
// the session, the options it was made with and the dialer. The session
// is closed after the test within cassandra.CloseSession's bound (after
// answers lost mid-frame, gocql's Close has been seen to wait for ever on
// its control connection's reconnection), and the dialer's connections
// with it.
func FaultySession(tb testing.TB, o cassandra.Options) (*gocql.Session, cassandra.Options, *FaultyDialer) {
	tb.Helper()
	d := &FaultyDialer{}
	o.Dialer = d
	o.Timeout = 2 * time.Second
	session, err := cassandra.Connect(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if !cassandra.CloseSession(session) {
			tb.Log("the faulty session did not close within the bound (the driver's control connection); left behind")
		}
	})
	tb.Cleanup(d.CloseAll)
	return session, o, d
}
