package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// ledger records what a store answered to every append of a body, per
// stream, and afterwards checks the streams against it (I1–I4, I6):
//
//   - every acknowledged event is stored once, at its acknowledged version;
//   - an append whose outcome was unknown is stored whole and contiguous,
//     or not at all;
//   - an append refused (conflict, unavailable, invalid) is not stored;
//   - nothing else is stored (every append to the stream went through the
//     ledger).
//
// It is safe for concurrent use.
type ledger struct {
	t  testing.TB
	mu sync.Mutex
	s  map[log.StreamID]*streamLedger
}

type streamLedger struct {
	acked   map[uuid.UUID]int64
	unknown [][]uuid.UUID
	refused map[uuid.UUID]bool
}

func newLedger(t testing.TB) *ledger { return &ledger{t: t, s: map[log.StreamID]*streamLedger{}} }

func (l *ledger) stream(s log.StreamID) *streamLedger {
	sl := l.s[s]
	if sl == nil {
		sl = &streamLedger{acked: map[uuid.UUID]int64{}, refused: map[uuid.UUID]bool{}}
		l.s[s] = sl
	}
	return sl
}

// outcome classifies an append's answer.
type outcome int

const (
	acked outcome = iota
	conflict
	unknown
	refused // unavailable, idempotency conflict, invalid: nothing written
)

// record notes the answer (res, err) to an append of evs (ids chosen by
// the client) to stream, checking that an acknowledgement describes evs
// and never moves an id. It returns how the append ended.
func (l *ledger) record(stream log.StreamID, evs []log.ProposedEvent, res log.AppendResult, err error) outcome {
	l.t.Helper()
	ids := idsOf(evs)
	l.mu.Lock()
	defer l.mu.Unlock()
	sl := l.stream(stream)
	switch {
	case err == nil:
		if e := resultDescribes(res, stream, evs); e != nil {
			l.t.Error(e)
			return acked
		}
		for _, e := range res.Events {
			if v, ok := sl.acked[e.ID]; ok && v != e.Version {
				l.t.Errorf("%s: id %s acknowledged at version %d and at %d (duplicate %v)", stream, e.ID, v, e.Version, res.Duplicate)
			}
			sl.acked[e.ID] = e.Version
		}
		return acked
	case errors.Is(err, log.ErrOutcomeUnknown):
		sl.unknown = append(sl.unknown, ids)
		return unknown
	default:
		for _, id := range ids {
			sl.refused[id] = true
		}
		if _, ok := isConflict(err); ok {
			return conflict
		}
		return refused
	}
}

// acked returns the number of events acknowledged on stream.
func (l *ledger) ackedCount(stream log.StreamID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.stream(stream).acked)
}

// check reads every stream the ledger saw from every instance and checks
// it against the answers. It returns the events read, per stream.
func (l *ledger) check(t testing.TB, stores []log.Store) map[log.StreamID][]log.RecordedEvent {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[log.StreamID][]log.RecordedEvent{}
	for stream, sl := range l.s {
		evs := readEverywhere(t, stores, stream)
		out[stream] = evs
		at := make(map[uuid.UUID]int64, len(evs))
		for _, ev := range evs {
			at[ev.ID] = ev.Version
		}
		for id, v := range sl.acked {
			if got, ok := at[id]; !ok || got != v {
				t.Fatalf("%s: acknowledged event %s at version %d is stored at %d (found %v) (I1 no lost acknowledgements)", stream, id, v, got, ok)
			}
		}
		maybe := map[uuid.UUID]bool{}
		present := 0
		for _, ids := range sl.unknown {
			var in []int64
			for _, id := range ids {
				maybe[id] = true
				if v, ok := at[id]; ok {
					in = append(in, v)
				}
			}
			if len(in) == 0 {
				continue
			}
			if len(in) != len(ids) {
				t.Fatalf("%s: %d of the %d events of an append with unknown outcome are stored (I4 atomic)", stream, len(in), len(ids))
			}
			for i := range in {
				if in[i] != in[0]+int64(i) {
					t.Fatalf("%s: an append with unknown outcome is stored at versions %v (I4 contiguous)", stream, in)
				}
			}
			if _, acked := sl.acked[ids[0]]; !acked {
				present += len(ids)
			}
		}
		for _, ev := range evs {
			_, ok := sl.acked[ev.ID]
			switch {
			case ok || maybe[ev.ID]:
			case sl.refused[ev.ID]:
				t.Fatalf("%s: version %d holds %s from an append that was refused (I6 honest answers)", stream, ev.Version, ev.ID)
			default:
				t.Fatalf("%s: version %d holds %s, which no append sent", stream, ev.Version, ev.ID)
			}
		}
		if want := len(sl.acked) + present; len(evs) != want {
			t.Fatalf("%s: %d events stored, %d acknowledged and %d settled from unknown outcomes", stream, len(evs), len(sl.acked), present)
		}
	}
	return out
}
