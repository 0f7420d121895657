package main

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// newTracked appends n events of type typ to d, sent at sent.
func newTracked(t *testing.T, d *deliveries, n int, typ string, sent time.Time) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	evs := make([]*payload, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		evs[i] = &payload{Type: typ, Data: []byte(`{"a":1}`)}
	}
	d.sent(ids, evs, sent)
	return ids
}

func deliver(d *deliveries, sub int, id uuid.UUID, stream string, version int64, at time.Time) {
	d.delivered(sub, &feedLine{Position: "p", Stream: stream, ID: id, Type: "T", Version: version}, at)
}

func TestDeliveries(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

	t.Run("OK", func(t *testing.T) {
		d := newDeliveries(2, func(string) bool { return true })
		warm := newTracked(t, d, 1, "T", ms(0))   // warm-up: checked, not timed
		ids := newTracked(t, d, 2, "T", ms(1000)) // one append of two events
		d.acknowledged(warm, ms(10))
		d.acknowledged(ids, ms(1020))
		if _, left := d.progress(); left != 6 {
			t.Fatalf("%d awaited, want 6", left)
		}
		for sub := range 2 {
			deliver(d, sub, warm[0], "s-1", 1, ms(300))
			deliver(d, sub, ids[0], "s-1", 2, ms(1300+100*sub))
			deliver(d, sub, ids[1], "s-1", 3, ms(1300+100*sub))
		}
		if !d.wait(t.Context(), time.Millisecond) {
			t.Fatal("wait: deliveries outstanding")
		}
		fromSend, fromAck := newRecorder(ms(500)), newRecorder(ms(500))
		tally := d.record(ms(500), fromSend, fromAck)
		if !tally.ok() || tally.appended != 3 || tally.acked != 3 || tally.delivered != 6 {
			t.Fatalf("tally %+v", tally)
		}
		send, ack := fromSend.phase("delivery", "delivery", ms(2000)), fromAck.phase("delivery-after-ack", "delivery", ms(2000))
		if got, want := send.Latency.Count, int64(4); got != want {
			t.Fatalf("%d timed deliveries, want %d (the warm-up event is not timed)", got, want)
		}
		// 300 ms and 400 ms from the send, 280 ms and 380 ms from the ack.
		if got := send.Latency.MaxUS; got < 399_000 || got > 401_000 {
			t.Fatalf("max from send %d µs, want 400 ms", got)
		}
		if got := ack.Latency.P50US; got < 279_000 || got > 281_000 {
			t.Fatalf("p50 from ack %d µs, want 280 ms", got)
		}
		if send.Events != 4 || send.Bytes != 4*7 {
			t.Fatalf("events %d, bytes %d", send.Events, send.Bytes)
		}
	})
	t.Run("Faults", func(t *testing.T) {
		d := newDeliveries(1, func(typ string) bool { return typ == "T" })
		ids := newTracked(t, d, 3, "T", ms(0))
		other := newTracked(t, d, 1, "U", ms(0)) // not in the feed
		d.acknowledged(ids, ms(10))
		d.acknowledged(other, ms(10))
		deliver(d, 0, ids[1], "s-1", 2, ms(100))
		deliver(d, 0, ids[0], "s-1", 1, ms(100))                  // behind version 2
		deliver(d, 0, ids[0], "s-1", 1, ms(150))                  // again
		deliver(d, 0, other[0], "s-2", 1, ms(100))                // wrong feed
		deliver(d, 0, uuid.Must(uuid.NewV7()), "x-1", 1, ms(100)) // another run's
		if d.wait(t.Context(), time.Millisecond) {
			t.Fatal("wait reported complete with ids[2] missing")
		}
		tally := d.record(ms(0), newRecorder(ms(0)), newRecorder(ms(0)))
		if tally.ok() {
			t.Fatal("faults not reported")
		}
		want := deliveryTally{appended: 3, acked: 3, delivered: 2, missing: 1, duplicates: 1, disorder: 1, wrongFeed: 1, foreign: 1}
		if tally != want {
			t.Fatalf("tally %+v, want %+v", tally, want)
		}
	})
	t.Run("Unacknowledged", func(t *testing.T) {
		d := newDeliveries(1, func(string) bool { return true })
		failed := newTracked(t, d, 1, "T", ms(0)) // the append failed; it committed anyway
		late := newTracked(t, d, 1, "T", ms(0))   // delivered before its answer was read
		deliver(d, 0, failed[0], "s-1", 1, ms(300))
		deliver(d, 0, late[0], "s-2", 1, ms(300))
		d.acknowledged(late, ms(400))
		if !d.wait(t.Context(), time.Millisecond) {
			t.Fatal("wait: deliveries outstanding")
		}
		fromSend, fromAck := newRecorder(ms(0)), newRecorder(ms(0))
		tally := d.record(ms(0), fromSend, fromAck)
		want := deliveryTally{appended: 2, acked: 1, delivered: 2, unackedDelivered: 1, beforeAck: 1}
		if tally != want || !tally.ok() {
			t.Fatalf("tally %+v, want %+v", tally, want)
		}
		if got := fromAck.phase("a", "delivery", ms(1000)).Latency; got.Count != 1 || got.MaxUS != histMinUS {
			t.Fatalf("after-ack latency %+v, want one clamped to %d µs", got, histMinUS)
		}
		if got := fromSend.phase("s", "delivery", ms(1000)).Latency.Count; got != 2 {
			t.Fatalf("%d timed from send, want 2", got)
		}
	})
}
