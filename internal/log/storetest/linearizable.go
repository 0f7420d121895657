package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

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
	linRead      struct{ how string }
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
			return fmt.Sprintf("%s() -> %d", in.how, output.(linReadOut).version)
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

// testLinearizable records a history of concurrent appends (exact and
// "any") and head reads (Info, and a backward read of the last event) on
// one stream from clients spread over the instances, and checks with
// porcupine that it has a linearization (I5). Appends whose outcome was
// unknown are settled afterwards from the stream (their ids are there or
// not) and may take effect any time up to the end of the run; the ledger
// checks I1–I4 on the same history.
func testLinearizable(t *testing.T, s *suite) {
	c := s.cluster(t, Config{MaxEventsPerAppend: MaxAppend})
	stores := storesOf(t, c)
	const (
		stream       = "lin-1"
		clients, ops = 8, 25
	)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		led       = newLedger(t)
		tr        transients
		mu        sync.Mutex
		history   []porcupine.Operation
		unsettled = map[int]bool{} // indexes into history
		wg        sync.WaitGroup
	)
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[cl%len(stores)]
			rng := rand.New(rand.NewPCG(uint64(cl), uint64(start.UnixNano())))
			var seen int64
			for i := 0; i < ops && !t.Failed(); i++ {
				op := porcupine.Operation{ClientId: cl, Call: now()}
				if rng.IntN(5) == 0 {
					v, how, err := readHead(st, stream, rng.IntN(2) == 0)
					if err != nil {
						t.Errorf("client %d: %s: %v", cl, how, err)
						return
					}
					op.Input, op.Output, op.Return = linRead{how}, linReadOut{v}, now()
					seen = v
				} else {
					in := linAppend{expected: log.Any, n: int64(1 + rng.IntN(3))}
					if rng.IntN(2) == 0 {
						in.expected = log.ExpectedVersion(seen)
					}
					evs := events(int(in.n), fmt.Sprintf("C%d", cl))
					in.ids = idsOf(evs)
					res, err := send(st, stream, in.expected, evs)
					op.Input, op.Return = in, now()
					tr.sent()
					switch led.record(stream, evs, res, err) {
					case acked:
						op.Output, seen = linAppendOut{ok: true, first: res.FirstVersion}, res.LastVersion
					case conflict:
						wev, _ := isConflict(err)
						op.Output, seen = linAppendOut{current: wev.Current}, wev.Current
					case unknown:
						tr.note(err)
						mu.Lock()
						unsettled[len(history)] = true
						history = append(history, op)
						mu.Unlock()
						continue
					default:
						if !tr.note(err) {
							t.Errorf("client %d: append: %v", cl, err)
							return
						}
						continue // refused before anything was written: it never happened
					}
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	end := now()
	tr.check(t)
	got := led.check(t, stores)[stream]
	at := map[uuid.UUID]int64{}
	for _, ev := range got {
		at[ev.ID] = ev.Version
	}
	var settled []porcupine.Operation
	for i, op := range history {
		if !unsettled[i] {
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
	t.Logf("%d operations (%d settled after an unknown outcome) linearizable on %d instance(s); stream at %d",
		len(settled), len(unsettled), len(stores), len(got))
}

// readHead reads the stream's version by Info or by reading its last
// event backward.
func readHead(s log.Store, stream log.StreamID, byInfo bool) (int64, string, error) {
	if byInfo {
		v, err := headOf(s, stream)
		return v, "info", err
	}
	evs, err := tryReadAll(s, log.ReadRange{Stream: stream, Backward: true, Limit: 1})
	if err != nil || len(evs) == 0 {
		return 0, "last", err
	}
	if len(evs) != 1 {
		return 0, "last", errors.New("a backward read with limit 1 returned several events")
	}
	return evs[0].Version, "last", nil
}
