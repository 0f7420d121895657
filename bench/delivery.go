package main

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// deliveries tracks every event the subscribe scenario appends, by id —
// when its append was first sent, when it was acknowledged, when each
// subscriber received it — so the payloads stay exactly ingest's (no
// timestamp in the data) and every delivery can be checked: none missing,
// none twice, each stream in version order.
type deliveries struct {
	subscribers int
	expects     func(typ string) bool

	mu     sync.Mutex
	events map[uuid.UUID]*tracked
	subs   []subTally
	// outstanding counts (acknowledged expected event, subscriber) pairs
	// not delivered yet: the run waits for it to reach 0.
	outstanding int64
	acked       int64 // acknowledged events the feed holds
	changed     chan struct{}
}

// tracked is one appended event.
type tracked struct {
	sent, acked time.Time // first attempt sent; answered (zero: not acknowledged)
	size        int32     // data + metadata bytes
	expected    bool      // in the followed feed
	got         []time.Time
}

// subTally is one subscriber's deliveries.
type subTally struct {
	delivered  int64            // first deliveries of this run's expected events
	duplicates int64            // an event delivered again
	disorder   int64            // a stream's version not above the last delivered
	wrongFeed  int64            // an event that is not in the followed feed
	foreign    int64            // ids this run did not append (other runs' tails)
	heads      map[string]int64 // stream → last version delivered
}

func newDeliveries(subscribers int, expects func(typ string) bool) *deliveries {
	d := &deliveries{
		subscribers: subscribers, expects: expects,
		events:  make(map[uuid.UUID]*tracked),
		subs:    make([]subTally, subscribers),
		changed: make(chan struct{}, 1),
	}
	for i := range d.subs {
		d.subs[i].heads = make(map[string]int64)
	}
	return d
}

// sent records an append's events before its first attempt.
func (d *deliveries) sent(ids []uuid.UUID, evs []*payload, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, id := range ids {
		d.events[id] = &tracked{sent: at, size: int32(evs[i].Size()), expected: d.expects(evs[i].Type),
			got: make([]time.Time, d.subscribers)}
	}
}

// acknowledged records an append's success.
func (d *deliveries) acknowledged(ids []uuid.UUID, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		t := d.events[id]
		if t == nil || !t.acked.IsZero() {
			continue
		}
		t.acked = at
		if !t.expected {
			continue
		}
		d.acked++
		for _, g := range t.got {
			if g.IsZero() {
				d.outstanding++
			}
		}
	}
	d.signal()
}

// delivered records subscriber n reading ev at at.
func (d *deliveries) delivered(n int, ev *feedLine, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &d.subs[n]
	t := d.events[ev.ID]
	switch {
	case t == nil:
		s.foreign++
		return
	case !t.got[n].IsZero():
		s.duplicates++
		return
	}
	t.got[n] = at
	if !t.expected {
		s.wrongFeed++
		return
	}
	s.delivered++
	if last, ok := s.heads[ev.Stream]; ok && ev.Version <= last {
		s.disorder++
	} else {
		s.heads[ev.Stream] = ev.Version
	}
	if !t.acked.IsZero() {
		d.outstanding--
		d.signal()
	}
}

func (d *deliveries) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// wait returns once every acknowledged event has reached every
// subscriber, or after limit, or when ctx ends; call it when the appends
// are over. It reports whether everything arrived.
func (d *deliveries) wait(ctx context.Context, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		left := d.outstanding
		d.mu.Unlock()
		if left == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-d.changed:
		}
	}
}

// progress returns the deliveries so far (all subscribers) and those of
// acknowledged events still awaited, for progress lines.
func (d *deliveries) progress() (delivered, outstanding int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.subs {
		delivered += d.subs[i].delivered
	}
	return delivered, d.outstanding
}

// deliveryTally is the end-of-run account of every subscriber together.
type deliveryTally struct {
	appended, acked int64 // events of the feed appended, acknowledged
	// Sums over subscribers.
	delivered, missing, duplicates, disorder, wrongFeed, foreign int64
	unackedDelivered                                             int64 // delivered, though their append failed (outcome unknown)
	beforeAck                                                    int64 // delivered before the client read the append's answer
}

// ok reports whether the feed delivered exactly what was acknowledged.
func (t *deliveryTally) ok() bool {
	return t.missing == 0 && t.duplicates == 0 && t.disorder == 0 && t.wrongFeed == 0
}

// record puts the latencies of the events sent from measureAt on into
// fromSend (delivery − first send) and fromAck (delivery − answer; only
// acknowledged events), each delivery by its time, and counts the rest.
func (d *deliveries) record(measureAt time.Time, fromSend, fromAck *recorder) deliveryTally {
	d.mu.Lock()
	defer d.mu.Unlock()
	var t deliveryTally
	for _, s := range d.subs {
		t.duplicates += s.duplicates
		t.disorder += s.disorder
		t.wrongFeed += s.wrongFeed
		t.foreign += s.foreign
	}
	for _, e := range d.events {
		if !e.expected {
			continue
		}
		t.appended++
		if !e.acked.IsZero() {
			t.acked++
		}
		for _, g := range e.got {
			switch {
			case g.IsZero():
				if !e.acked.IsZero() {
					t.missing++
				}
				continue
			case e.acked.IsZero():
				t.unackedDelivered++
			case g.Before(e.acked):
				t.beforeAck++
			}
			t.delivered++
			if e.sent.Before(measureAt) {
				continue // warm-up: checked, not timed
			}
			o := outcome{events: 1, bytes: int(e.size)}
			fromSend.record(g, g.Sub(e.sent), o)
			if !e.acked.IsZero() {
				fromAck.record(g, g.Sub(e.acked), o) // negative: 1 µs (histMinUS)
			}
		}
	}
	return t
}
