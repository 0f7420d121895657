package shardstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestUnavailableAfterPaxos: a commit applied by Cassandra but answered
// Unavailable or Overloaded — what a paxos_variant v1 coordinator does
// when the commit phase finds too few replicas after a quorum accepted —
// is never answered "nothing was written" (ErrUnavailable). The owner
// settles it with a SERIAL read: the append succeeds, stored once; and
// when that read fails too, the append is ErrOutcomeUnknown, and the
// client's retry with the same ids finds it stored, once.
func TestUnavailableAfterPaxos(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		settle bool // whether the settling reads work
	}{
		{"UnavailableSettled", &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}, true},
		{"OverloadedSettled", &gocql.RequestErrOverloaded{}, true},
		{"UnavailableUnsettled", &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newKeyspace(t, 1)
			var armed atomic.Bool
			s := open(t, shardstore.Options{Cassandra: o, LeaseTTL: 5 * time.Second,
				LogFault: func(op string, shard int, err error) error {
					switch {
					case !armed.Load() || err != nil:
						return err
					case op == "commit":
						return c.err // applied, answered with an error
					case op == "settle" && !c.settle:
						return &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}
					}
					return err
				}})
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := appendN(ctx, s, "paxos-1", log.NoStream, 1); err != nil {
				t.Fatal(err)
			}
			req := log.AppendRequest{Stream: "paxos-1", Expected: 1, Events: []log.ProposedEvent{ev(uuid.New(), "Maybe", `{"n":2}`)}}
			armed.Store(true)
			res, err := s.Append(ctx, req)
			armed.Store(false)
			if errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("an applied commit answered %v is reported as not written: %v", c.err, err)
			}
			if c.settle {
				if err != nil || res.FirstVersion != 2 || res.Duplicate {
					t.Fatalf("settled append: %+v, %v; want version 2", res, err)
				}
			} else {
				if !errors.Is(err, log.ErrOutcomeUnknown) {
					t.Fatalf("unsettled append: %+v, %v; want ErrOutcomeUnknown", res, err)
				}
				// The retry, once Cassandra answers again, finds it stored.
				for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					if res, err = s.Append(ctx, req); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("retry: %v", err)
					}
				}
				if res.FirstVersion != 2 || !res.Duplicate {
					t.Fatalf("retry: %+v, want the stored append (version 2, duplicate)", res)
				}
			}
			checkGapless(t, "paxos-1", readAll(t, s, "paxos-1"), 2)
		})
	}
}
