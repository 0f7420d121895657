package cassandra_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// faultyDialer opens real connections to Cassandra whose traffic it can
// silently drop in one direction, as a network partition would.
type faultyDialer struct {
	dropRequests, dropResponses atomic.Bool
	mu                          sync.Mutex
	conns                       []net.Conn
}

func (d *faultyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return &faultyConn{Conn: c, d: d}, nil
}

func (d *faultyDialer) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

type faultyConn struct {
	net.Conn
	d *faultyDialer
}

func (c *faultyConn) Write(p []byte) (int, error) {
	if c.d.dropRequests.Load() {
		return len(p), nil // lost on the way
	}
	return c.Conn.Write(p)
}

func (c *faultyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.d.dropResponses.Load() {
			return n, err
		}
		// The response was lost on the way back; keep waiting.
	}
}

// TestOutcomeUnknown: when the network loses a conditional append or its
// answer, the store reports ErrOutcomeUnknown — never success, never a
// conflict — and a retry with the same event ids resolves it exactly once,
// on the same or another instance.
func TestOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		name    string
		applied bool // whether Cassandra got (and applied) the write
	}{{"ResponseLost", true}, {"RequestLost", false}} {
		t.Run(c.name, func(t *testing.T) {
			d := &faultyDialer{}
			s1, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
				o.Dialer = d
				o.Timeout = 2 * time.Second
			})
			t.Cleanup(d.closeAll)
			// Two appends first, so every statement is prepared on the
			// connection and the lost frame is the append itself.
			mustAppend(t, s1, "unknown-1", log.NoStream, withIDs(events(1, "Before")))
			mustAppend(t, s1, "unknown-1", 1, withIDs(events(1, "Before")))
			evs := withIDs(events(3, "Maybe"))
			cassandra.SetBeforeWrite(s1, func() {
				if c.applied {
					d.dropResponses.Store(true)
				} else {
					d.dropRequests.Store(true)
				}
			})
			_, err := s1.Append(context.Background(), log.AppendRequest{Stream: "unknown-1", Expected: 2, Events: evs})
			if !errors.Is(err, log.ErrOutcomeUnknown) {
				t.Fatalf("lost write reported as %v, want ErrOutcomeUnknown", err)
			}
			var wev *log.WrongExpectedVersionError
			if errors.As(err, &wev) || errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("lost write reported as a conflict or as not applied: %v", err)
			}

			o.Dialer = nil // a second instance with a healthy network
			s2 := cassandratest.Reopen(t, o)
			got := readAll(t, s2, log.ReadRange{Stream: "unknown-1"})
			if want := 2 + map[bool]int{true: 3, false: 0}[c.applied]; len(got) != want {
				t.Fatalf("after the lost write the stream holds %d events, want %d", len(got), want)
			}
			for _, exp := range []log.ExpectedVersion{2, log.Any} {
				res, err := s2.Append(context.Background(), log.AppendRequest{Stream: "unknown-1", Expected: exp, Events: evs})
				if err != nil || res.FirstVersion != 3 || res.LastVersion != 5 {
					t.Fatalf("retry (expected %v): %+v %v", exp, res, err)
				}
				if exp == 2 && res.Duplicate != c.applied {
					t.Fatalf("retry duplicate=%v, but the lost write applied=%v", res.Duplicate, c.applied)
				}
			}
			checkGapless(t, readAll(t, s2, log.ReadRange{Stream: "unknown-1"}), 5)
		})
	}
}
