package cassandra_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

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
			d := &cassandratest.FaultyDialer{}
			var armed atomic.Bool
			s1, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
				o.Dialer = d
				o.Timeout = 2 * time.Second
				o.BeforeWrite = func() {
					if !armed.Load() {
						return
					}
					if c.applied {
						d.DropResponses.Store(true)
					} else {
						d.DropRequests.Store(true)
					}
				}
			})
			t.Cleanup(d.CloseAll)
			// Two appends first, so every statement is prepared on the
			// connection and the lost frame is the append itself.
			mustAppend(t, s1, "unknown-1", log.NoStream, withIDs(events(1, "Before")))
			mustAppend(t, s1, "unknown-1", 1, withIDs(events(1, "Before")))
			evs := withIDs(events(3, "Maybe"))
			armed.Store(true)
			_, err := s1.Append(context.Background(), log.AppendRequest{Stream: "unknown-1", Expected: 2, Events: evs})
			if !errors.Is(err, log.ErrOutcomeUnknown) {
				t.Fatalf("lost write reported as %v, want ErrOutcomeUnknown", err)
			}
			var wev *log.WrongExpectedVersionError
			if errors.As(err, &wev) || errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("lost write reported as a conflict or as not applied: %v", err)
			}

			o.Dialer, o.BeforeWrite = nil, nil // a second instance with a healthy network
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
