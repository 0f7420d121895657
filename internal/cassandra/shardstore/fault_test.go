package shardstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestOutcomeUnknown: when the network loses a commit's conditional write
// or its answer (and then everything else the instance sends or hears, so
// its settling SERIAL read fails too), the store reports ErrOutcomeUnknown —
// never success, never a conflict. Another instance takes the shard over;
// its catch-up finds the commit in the log or not, and a retry with the
// same event ids resolves the append exactly once.
func TestOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		name    string
		applied bool // whether Cassandra got (and applied) the write
	}{{"ResponseLost", true}, {"RequestLost", false}} {
		t.Run(c.name, func(t *testing.T) {
			d := &cassandratest.FaultyDialer{}
			var armed atomic.Bool
			s1, o := shardstoretest.NewStore(t, func(so *shardstore.Options) {
				so.Cassandra.Shards = 1
				so.Cassandra.Dialer = d
				so.Cassandra.Timeout = 2 * time.Second
				so.BeforeCommit = func(int) {
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
			ctx := context.Background()
			// Two appends first, so every statement is prepared on the
			// connection and the lost frame is the commit itself.
			if _, err := s1.Append(ctx, log.AppendRequest{Stream: "unknown-1", Expected: log.NoStream, Events: withIDs(events(1, "Before"))}); err != nil {
				t.Fatal(err)
			}
			if _, err := s1.Append(ctx, log.AppendRequest{Stream: "unknown-1", Expected: 1, Events: withIDs(events(1, "Before"))}); err != nil {
				t.Fatal(err)
			}
			evs := withIDs(events(3, "Maybe"))
			armed.Store(true)
			_, err := s1.Append(ctx, log.AppendRequest{Stream: "unknown-1", Expected: 2, Events: evs})
			if !errors.Is(err, log.ErrOutcomeUnknown) {
				t.Fatalf("lost write reported as %v, want ErrOutcomeUnknown", err)
			}
			var wev *log.WrongExpectedVersionError
			if errors.As(err, &wev) || errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("lost write reported as a conflict or as not applied: %v", err)
			}

			// A second instance with a healthy network; the first is cut
			// off for good (its lease runs out unrenewed).
			o.Cassandra.Dialer, o.BeforeCommit = nil, nil
			s2 := shardstoretest.Reopen(t, o)
			var got []log.RecordedEvent
			deadline := time.Now().Add(time.Minute)
			for {
				got = got[:0]
				err := s2.ReadStream(ctx, log.ReadRange{Stream: "unknown-1"}, func(e *log.RecordedEvent) error {
					got = append(got, *e)
					return nil
				})
				if err == nil {
					break
				}
				if !errors.Is(err, log.ErrUnavailable) || time.Now().After(deadline) {
					t.Fatalf("read through the second instance: %v", err)
				}
				time.Sleep(100 * time.Millisecond) // the shard moves
			}
			if want := 2 + map[bool]int{true: 3, false: 0}[c.applied]; len(got) != want {
				t.Fatalf("after the lost write the stream holds %d events, want %d", len(got), want)
			}
			for _, exp := range []log.ExpectedVersion{2, log.Any} {
				res, err := s2.Append(ctx, log.AppendRequest{Stream: "unknown-1", Expected: exp, Events: evs})
				if err != nil || res.FirstVersion != 3 || res.LastVersion != 5 {
					t.Fatalf("retry (expected %v): %+v %v", exp, res, err)
				}
				if exp == 2 && res.Duplicate != c.applied {
					t.Fatalf("retry duplicate=%v, but the lost write applied=%v", res.Duplicate, c.applied)
				}
			}
			checkGapless(t, "unknown-1", readAll(t, s2, "unknown-1"), 5)
		})
	}
}
