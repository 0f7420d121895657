package record

import (
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// TestBuffersClearedTwice: a feed read's rowMem goes back to its pool
// through putMem, which clears its Buffers, and the next row's
// DecodeRecordInto clears them again. The second Clear judged the slabs
// by a record of no events and dropped every one over keptSlack: pooled
// Buffers kept nothing for records of more than ~64 events (a read of
// 100-event rows allocated 15 KB a row against 0.4 KB once fixed).
func TestBuffersClearedTwice(t *testing.T) {
	for _, n := range []int{40, 100, 1000} {
		want := Record{Appends: []Append{{Stream: log.StreamID("s-1"), FirstVersion: 1, Events: jsonEvents(n)}}}
		enc := AppendRecord(nil, &want)
		var bufs Buffers
		got, _, err := DecodeRecordInto(enc, nil, &bufs)
		if err != nil {
			t.Fatal(err)
		}
		first := &got.Appends[0].Events[0]
		// Without a Clear in between the slab is reused.
		got, _, err = DecodeRecordInto(enc, nil, &bufs)
		if err != nil {
			t.Fatal(err)
		}
		if &got.Appends[0].Events[0] != first {
			t.Fatalf("%d events: not reused even without Clear", n)
		}
		// As feeds' putMem then decodeRow do: Clear, then decode the same
		// record again.
		bufs.Clear()
		got, _, err = DecodeRecordInto(enc, nil, &bufs)
		if err != nil {
			t.Fatal(err)
		}
		if &got.Appends[0].Events[0] != first {
			t.Errorf("%d events: after Clear (putMem) the next decode of the same record allocated a new slab", n)
		}
	}
}
