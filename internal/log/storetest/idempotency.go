package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// testIdempotency: a retry of a stored append (same client ids, same
// order and payload) returns the original versions with Duplicate set and
// writes nothing, whatever instance it reaches, with an exact or "any"
// expected version, after other appends and after restarts; a partial
// repeat or a changed payload is an idempotency conflict; identical sends
// racing on several instances are written once.
func testIdempotency(t *testing.T, s *suite) {
	c := s.cluster(t, Config{MaxEventsPerAppend: MaxAppend})
	stores := storesOf(t, c)
	last := stores[len(stores)-1]

	for _, mode := range []struct {
		name string
		exp  log.ExpectedVersion
	}{{"Exact", log.NoStream}, {"Any", log.Any}} {
		s.run(t, "Retry"+mode.name, func(t *testing.T) {
			stream := log.StreamID("idem" + mode.name + "-1")
			evs := events(3, "E")
			first := mustAppend(t, stores[0], stream, mode.exp, evs)
			if first.Duplicate {
				t.Fatalf("first append reported as a duplicate: %+v", first)
			}
			mustAppend(t, last, stream, log.Any, events(2, "Other")) // appends in between
			respaced := cloneEvents(evs)
			respaced[1].Data = json.RawMessage(`{ "n" : 1 }`) // the same JSON
			for i, st := range stores {
				for _, req := range [][]log.ProposedEvent{evs, respaced} {
					res, err := send(st, stream, mode.exp, req)
					wantDuplicate(t, fmt.Sprintf("retry on instance %d", i), res, err, first)
				}
			}
			if got := readEverywhere(t, stores, stream); len(got) != 5 {
				t.Fatalf("%d events after retries, want 5", len(got))
			}
		})
	}

	s.run(t, "RetryAfterRestart", func(t *testing.T) {
		type sent struct {
			stream log.StreamID
			exp    log.ExpectedVersion
			evs    []log.ProposedEvent
			res    log.AppendResult
		}
		var all []*sent
		for _, exp := range []log.ExpectedVersion{log.NoStream, log.Any} {
			a := &sent{stream: log.StreamID(fmt.Sprintf("restart%v-1", exp)), exp: exp, evs: events(2, "E")}
			a.res = mustAppend(t, stores[0], a.stream, exp, a.evs)
			mustAppend(t, last, a.stream, log.Any, events(1, "Other"))
			all = append(all, a)
		}
		for i := range stores {
			c.Restart(t, i)
			for j, st := range storesOf(t, c) {
				for _, a := range all {
					res, err := send(st, a.stream, a.exp, a.evs)
					wantDuplicate(t, fmt.Sprintf("%s: retry on instance %d after restarting instance %d", a.stream, j, i), res, err, a.res)
				}
			}
		}
		stores := storesOf(t, c)
		for _, a := range all {
			// The restarted instances continue the streams where they were.
			res := mustAppend(t, stores[len(stores)-1], a.stream, 3, events(1, "After"))
			if res.FirstVersion != 4 {
				t.Fatalf("%s: append after restarts at %d, want 4", a.stream, res.FirstVersion)
			}
			if got := readEverywhere(t, stores, a.stream); len(got) != 4 {
				t.Fatalf("%s: %d events, want 4", a.stream, len(got))
			}
		}
	})
	stores = storesOf(t, c) // RetryAfterRestart replaced them
	last = stores[len(stores)-1]

	s.run(t, "PartialRepeat", func(t *testing.T) {
		const stream = "partial-1"
		evs := events(2, "E")
		mustAppend(t, stores[0], stream, log.NoStream, evs)
		for _, exp := range []log.ExpectedVersion{log.Any, log.NoStream, 2} {
			for i, req := range [][]log.ProposedEvent{
				{evs[1], evs[0]},                    // reordered
				{evs[0]},                            // only the first
				{evs[1]},                            // only the second
				{evs[0], events(1, "New")[0]},       // the first and a new one
				{events(1, "New")[0], evs[1]},       // a new one and the second
				{evs[0], evs[1], events(1, "N")[0]}, // all and one more
			} {
				for j, st := range stores {
					_, err := send(st, stream, exp, req)
					if !errors.Is(err, log.ErrIdempotencyConflict) {
						t.Fatalf("expected %v, repeat %d on instance %d: %v, want an idempotency conflict", exp, i, j, err)
					}
				}
			}
		}
		if got := readEverywhere(t, stores, stream); len(got) != 2 {
			t.Fatalf("%d events after refused repeats, want 2", len(got))
		}
	})

	s.run(t, "ChangedPayload", func(t *testing.T) {
		const stream = "payload-1"
		evs := events(1, "E")
		evs[0].Metadata = json.RawMessage(`{"corr":"a"}`)
		mustAppend(t, stores[0], stream, log.NoStream, evs)
		change := func(f func(e *log.ProposedEvent)) []log.ProposedEvent {
			c := cloneEvents(evs)
			f(&c[0])
			return c
		}
		for _, exp := range []log.ExpectedVersion{log.Any, log.NoStream, 1} {
			for name, req := range map[string][]log.ProposedEvent{
				"data":        change(func(e *log.ProposedEvent) { e.Data = json.RawMessage(`{"n":"changed"}`) }),
				"type":        change(func(e *log.ProposedEvent) { e.Type = "Other" }),
				"metadata":    change(func(e *log.ProposedEvent) { e.Metadata = json.RawMessage(`{"corr":"b"}`) }),
				"no metadata": change(func(e *log.ProposedEvent) { e.Metadata = nil }),
			} {
				for j, st := range stores {
					_, err := send(st, stream, exp, req)
					if !errors.Is(err, log.ErrIdempotencyConflict) {
						t.Fatalf("expected %v, same id with other %s on instance %d: %v, want an idempotency conflict", exp, name, j, err)
					}
				}
			}
		}
		spaced := change(func(e *log.ProposedEvent) {
			e.Data, e.Metadata = json.RawMessage(` { "n" : 0 } `), json.RawMessage(`{ "corr" : "a" }`)
		})
		res, err := send(last, stream, log.Any, spaced)
		if err != nil || !res.Duplicate || res.FirstVersion != 1 {
			t.Fatalf("a respaced retry: %+v %v, want a duplicate of version 1", res, err)
		}
		if got := readEverywhere(t, stores, stream); len(got) != 1 {
			t.Fatalf("%d events, want 1", len(got))
		}
	})

	s.run(t, "GeneratedIDsAreNew", func(t *testing.T) {
		// Without client ids a resend is a new append (documented).
		const stream = "gen-1"
		evs := generated(1, "E")
		mustAppend(t, stores[0], stream, log.Any, evs)
		mustAppend(t, last, stream, log.Any, evs)
		got := readEverywhere(t, stores, stream)
		if len(got) != 2 || got[0].ID == got[1].ID {
			t.Fatalf("two sends without ids: %d events", len(got))
		}
	})

	for _, mode := range []struct {
		name string
		exp  log.ExpectedVersion
	}{{"Exact", 1}, {"Any", log.Any}} {
		s.run(t, "Concurrent"+mode.name, func(t *testing.T) {
			// The same append sent 8 times at once over the instances:
			// written once, every sender told the same versions.
			stream := log.StreamID("storm" + mode.name + "-1")
			mustAppend(t, stores[0], stream, log.Any, events(1, "Seed"))
			evs := events(2, "E")
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				firsts  = map[int64]int{}
				written int
				start   = make(chan struct{})
			)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := send(stores[i%len(stores)], stream, mode.exp, evs)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("send %d: %v", i, err)
						return
					}
					if e := resultDescribes(res, stream, evs); e != nil {
						t.Error(e)
					}
					firsts[res.FirstVersion]++
					if !res.Duplicate {
						written++
					}
				}()
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				return
			}
			if len(firsts) != 1 || written != 1 || firsts[2] != 8 {
				t.Fatalf("first versions %v, written by %d sends; want all at 2, written once", firsts, written)
			}
			if got := readEverywhere(t, stores, stream); len(got) != 3 {
				t.Fatalf("%d events, want 3", len(got))
			}
		})
	}
}

// wantDuplicate fails unless (res, err) is the duplicate answer to the
// append first acknowledged.
func wantDuplicate(t testing.TB, what string, res log.AppendResult, err error, first log.AppendResult) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v, want a duplicate of %d..%d", what, err, first.FirstVersion, first.LastVersion)
	}
	if !res.Duplicate || res.Stream != first.Stream || res.FirstVersion != first.FirstVersion || res.LastVersion != first.LastVersion {
		t.Fatalf("%s: %+v, want a duplicate of %+v", what, res, first)
	}
	if len(res.Events) != len(first.Events) {
		t.Fatalf("%s: %d events acknowledged, originally %d", what, len(res.Events), len(first.Events))
	}
	for i := range res.Events {
		if res.Events[i] != first.Events[i] {
			t.Fatalf("%s: event %d is %+v, originally %+v", what, i, res.Events[i], first.Events[i])
		}
	}
}
