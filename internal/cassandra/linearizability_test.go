package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// The sequential specification of one stream, for porcupine: the state is
// the stream's version.
type (
	linAppend struct {
		expected log.ExpectedVersion
		n        int64
		ids      []uuid.UUID
	}
	linRead      struct{}
	linAppendOut struct {
		ok      bool
		first   int64 // ok
		current int64 // wrong expected version
	}
	linReadOut struct{ version int64 }
)

var streamModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		v := state.(int64)
		switch in := input.(type) {
		case linRead:
			return output.(linReadOut).version == v, v
		case linAppend:
			out := output.(linAppendOut)
			if !in.expected.Matches(v) {
				return !out.ok && out.current == v, v
			}
			return out.ok && out.first == v+1, v + in.n
		}
		return false, v
	},
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case linRead:
			return fmt.Sprintf("read() -> %d", output.(linReadOut).version)
		case linAppend:
			out := output.(linAppendOut)
			if out.ok {
				return fmt.Sprintf("append(%v, %d) -> ok@%d", in.expected, in.n, out.first)
			}
			return fmt.Sprintf("append(%v, %d) -> conflict(current %d)", in.expected, in.n, out.current)
		}
		return "?"
	},
}

// TestLinearizableAppends records a history of concurrent appends (exact
// and "any") and serial head reads on one stream from two instances, and
// checks with porcupine that it has a linearization (invariant I5).
// Appends whose outcome was unknown are settled afterwards from the stream
// itself (their ids are there or not) and may take effect any time up to
// the end of the run.
func TestLinearizableAppends(t *testing.T) {
	s1, o := cassandratest.NewStore(t, nil)
	s2 := cassandratest.Reopen(t, o)
	const clients, ops = 8, 25
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		unknown []int // indexes into history
		wg      sync.WaitGroup
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			s := []log.Store{s1, s2}[c%2]
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var seen int64
			for i := 0; i < ops; i++ {
				op := porcupine.Operation{ClientId: c, Call: now()}
				if rng.IntN(5) == 0 {
					info, err := s.Info(context.Background(), "lin-1")
					switch {
					case errors.Is(err, log.ErrStreamNotFound):
						info.Version = 0
					case err != nil:
						t.Error(err)
						return
					}
					op.Input, op.Output, op.Return = linRead{}, linReadOut{info.Version}, now()
					seen = info.Version
				} else {
					in := linAppend{expected: log.Any, n: int64(1 + rng.IntN(3))}
					if rng.IntN(2) == 0 {
						in.expected = log.ExpectedVersion(seen)
					}
					evs := withIDs(events(int(in.n), "L"))
					for _, e := range evs {
						in.ids = append(in.ids, e.ID)
					}
					res, err := s.Append(context.Background(), log.AppendRequest{Stream: "lin-1", Expected: in.expected, Events: evs})
					op.Input, op.Return = in, now()
					var wev *log.WrongExpectedVersionError
					switch {
					case err == nil:
						op.Output, seen = linAppendOut{ok: true, first: res.FirstVersion}, res.LastVersion
					case errors.As(err, &wev):
						op.Output, seen = linAppendOut{current: wev.Current}, wev.Current
					case errors.Is(err, log.ErrOutcomeUnknown):
						mu.Lock()
						unknown = append(unknown, len(history))
						history = append(history, op)
						mu.Unlock()
						continue
					default:
						t.Error(err)
						return
					}
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	end := now()
	got := readAll(t, s1, log.ReadRange{Stream: "lin-1"})
	at := map[uuid.UUID]int64{}
	for _, ev := range got {
		at[ev.ID] = ev.Version
	}
	var settled []porcupine.Operation
	for i, op := range history {
		if !contains(unknown, i) {
			settled = append(settled, op)
			continue
		}
		in := op.Input.(linAppend)
		if v, ok := at[in.ids[0]]; ok {
			op.Output, op.Return = linAppendOut{ok: true, first: v}, end
			settled = append(settled, op)
		} // not applied: it never happened
	}
	res, info := porcupine.CheckOperationsVerbose(streamModel, settled, time.Minute)
	if res != porcupine.Ok {
		file := t.TempDir() + "/lin.html"
		_ = porcupine.VisualizePath(streamModel, info, file)
		t.Fatalf("history of %d operations is not linearizable (%v); visualisation: %s", len(settled), res, file)
	}
	t.Logf("%d operations (%d settled after an unknown outcome) linearizable; stream at %d", len(settled), len(unknown), len(got))
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
