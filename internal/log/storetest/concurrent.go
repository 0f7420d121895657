package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// transients counts answers that are honest but mean the store could not
// serve (ErrUnavailable, ErrOutcomeUnknown): allowed now and then on a
// loaded node, never in bulk.
type transients struct {
	n, of atomic.Int64
}

// sent counts one append.
func (c *transients) sent() { c.of.Add(1) }

// note reports whether err is transient, counting it.
func (c *transients) note(err error) bool {
	if errors.Is(err, log.ErrUnavailable) || errors.Is(err, log.ErrOutcomeUnknown) {
		c.n.Add(1)
		return true
	}
	return false
}

// check fails t when more than 2% of the calls (and more than 2) ended
// unavailable or unknown on a healthy loopback cluster.
func (c *transients) check(t testing.TB) {
	t.Helper()
	n, of := c.n.Load(), c.of.Load()
	if n > 2 && n*50 > of {
		t.Fatalf("%d of %d appends ended unavailable or with an unknown outcome on a healthy cluster", n, of)
	}
	if n > 0 {
		t.Logf("%d of %d appends ended unavailable or with an unknown outcome", n, of)
	}
}

// testConcurrentExact: 16 writers spread over the instances append to 4
// streams with exact expected versions, 30 acknowledged appends each of 1
// to 3 events, retrying on conflict from the current version the conflict
// reports. Every acknowledged event is stored once at its version,
// nothing else is, versions are gapless, and every conflict is honest:
// the current version it reports is above the writer's (which was a real
// head once), never equal to it.
func testConcurrentExact(t *testing.T, s *suite) {
	c := s.cluster(t, Config{})
	stores := storesOf(t, c)
	const writers, appends, nstreams = 16, 30, 4
	var (
		led       = newLedger(t)
		tr        transients
		conflicts atomic.Int64
		wg        sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[w%len(stores)]
			stream := log.StreamID(fmt.Sprintf("hot-%d", w%nstreams))
			var exp int64
			for done := 0; done < appends; {
				if t.Failed() {
					return
				}
				evs := events(1+(w+done)%3, fmt.Sprintf("W%d", w))
				res, err := send(st, stream, log.ExpectedVersion(exp), evs)
				tr.sent()
				switch led.record(stream, evs, res, err) {
				case acked:
					if res.FirstVersion != exp+1 || res.Duplicate {
						t.Errorf("writer %d: expected %d, acknowledged at %d (duplicate %v)", w, exp, res.FirstVersion, res.Duplicate)
						return
					}
					exp = res.LastVersion
					done++
				case conflict:
					conflicts.Add(1)
					wev, _ := isConflict(err)
					if wev.Current <= exp || wev.Expected != log.ExpectedVersion(exp) || wev.Stream != stream {
						t.Errorf("writer %d: expected %d, conflict %+v: the current version must be above a head once seen", w, exp, wev)
						return
					}
					exp = wev.Current
				default:
					if !tr.note(err) {
						t.Errorf("writer %d: append: %v", w, err)
						return
					}
					h, err := headOf(st, stream)
					if err != nil {
						t.Errorf("writer %d: head: %v", w, err)
						return
					}
					exp = h
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	tr.check(t)
	led.check(t, stores)
	for i := 0; i < nstreams; i++ {
		stream := log.StreamID(fmt.Sprintf("hot-%d", i))
		if n := led.ackedCount(stream); n < writers/nstreams*appends {
			t.Fatalf("%s: %d events acknowledged, want at least %d", stream, n, writers/nstreams*appends)
		}
	}
	t.Logf("%d writers × %d exact appends on %d instance(s), %d honest conflicts", writers, appends, len(stores), conflicts.Load())
}
