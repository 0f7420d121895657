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

// StreamModel is the sequential specification of one stream, for
// porcupine: the state is the stream's version. Histories give it
// StreamAppend and StreamRead inputs with StreamAppendOut and StreamReadOut
// outputs. This package's linearizability check and the 3-node cluster
// tests (internal/cassandra/shardstore) check their histories against it.
var StreamModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		v := state.(int64)
		switch in := input.(type) {
		case StreamRead:
			return output.(StreamReadOut).Version == v, v
		case StreamAppend:
			out := output.(StreamAppendOut)
			if !in.Expected.Matches(v) {
				return !out.OK && out.Current == v, v
			}
			return out.OK && out.First == v+1, v + in.N
		}
		return false, v
	},
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case StreamRead:
			how := in.How
			if how == "" {
				how = "read"
			}
			return fmt.Sprintf("%s() -> %d", how, output.(StreamReadOut).Version)
		case StreamAppend:
			out := output.(StreamAppendOut)
			if out.OK {
				return fmt.Sprintf("append(%v, %d) -> ok@%d", in.Expected, in.N, out.First)
			}
			return fmt.Sprintf("append(%v, %d) -> conflict(current %d)", in.Expected, in.N, out.Current)
		}
		return "?"
	},
}

type (
	// StreamAppend is an append of N events at Expected; IDs are its
	// events' ids (for settling an unknown outcome afterwards).
	StreamAppend struct {
		Expected log.ExpectedVersion
		N        int64
		IDs      []uuid.UUID
	}
	// StreamRead is a read of the head; How names it in visualisations.
	StreamRead struct{ How string }
	// StreamAppendOut is an append's answer: OK with its First version, or
	// a conflict with the Current version.
	StreamAppendOut struct {
		OK      bool
		First   int64
		Current int64
	}
	// StreamReadOut is the version a read saw.
	StreamReadOut struct{ Version int64 }
)

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
					op.Input, op.Output, op.Return = StreamRead{how}, StreamReadOut{v}, now()
					seen = v
				} else {
					in := StreamAppend{Expected: log.Any, N: int64(1 + rng.IntN(3))}
					if rng.IntN(2) == 0 {
						in.Expected = log.ExpectedVersion(seen)
					}
					evs := events(int(in.N), fmt.Sprintf("C%d", cl))
					in.IDs = idsOf(evs)
					res, err := send(st, stream, in.Expected, evs)
					op.Input, op.Return = in, now()
					tr.sent()
					switch led.record(stream, evs, res, err) {
					case acked:
						op.Output, seen = StreamAppendOut{OK: true, First: res.FirstVersion}, res.LastVersion
					case conflict:
						wev, _ := isConflict(err)
						op.Output, seen = StreamAppendOut{Current: wev.Current}, wev.Current
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
		in := op.Input.(StreamAppend)
		if v, ok := at[in.IDs[0]]; ok {
			op.Output, op.Return = StreamAppendOut{OK: true, First: v}, end
			settled = append(settled, op)
		} // not applied: it never happened
	}
	res, info := porcupine.CheckOperationsVerbose(StreamModel, settled, time.Minute)
	if res != porcupine.Ok {
		file := t.TempDir() + "/lin.html"
		_ = porcupine.VisualizePath(StreamModel, info, file)
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
	switch {
	case errors.Is(err, log.ErrStreamNotFound):
		return 0, "last", nil
	case err != nil:
		return 0, "last", err
	case len(evs) == 0:
		return 0, "last", errors.New("a backward read of a whole stream found it but no event")
	case len(evs) != 1:
		return 0, "last", errors.New("a backward read with limit 1 returned several events")
	}
	return evs[0].Version, "last", nil
}
