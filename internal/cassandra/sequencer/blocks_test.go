package sequencer

import (
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
)

// TestBlocksWritten: a stream is queued for each bucket whose written
// chunks end past a block's end, from blockLookBack blocks before its
// first chunk to the last version written there, unless its events are
// large; with the queue full the job is dropped and counted, never
// waited for (the fill calls it holding the tail's lock).
func TestBlocksWritten(t *testing.T) {
	b := &blocks{jobs: make(chan blockJob, 2), metrics: newMetrics(nil)}
	chunk := func(bucket, first, last int64) streams.Pending {
		return streams.Pending{Stream: "s-1", Bucket: bucket, FirstVersion: first, LastVersion: last, Payload: 200 * int(last-first+1)}
	}
	large := chunk(0, 200, 300)
	large.Payload = 101 * (blockEventBytes + 1)
	b.written([]streams.Pending{large})                              // events of 4 KiB and more: none
	b.written([]streams.Pending{chunk(0, 1, 10), chunk(0, 11, 255)}) // 1..255: no block ends
	b.written([]streams.Pending{chunk(0, 256, 256)})                 // 256 ends block 0
	b.written([]streams.Pending{chunk(0, 257, 300)})
	opens := chunk(1, 301, 511)
	opens.OpensBucket = true
	b.written([]streams.Pending{opens}) // bucket 0 closed at 300
	got := []blockJob{<-b.jobs, <-b.jobs}
	b.written([]streams.Pending{chunk(1, 512, 513), chunk(2, 514, 600)}) // bucket 1 ends block 1
	b.written(nil)
	got = append(got, <-b.jobs)
	want := []blockJob{
		{stream: "s-1", bucket: 0, from: 256 - 512, upTo: 256},
		{stream: "s-1", bucket: 1, from: 301, closed: true},
		{stream: "s-1", bucket: 1, from: 512 - 512, upTo: 513},
	}
	if !slices.Equal(got, want) || len(b.jobs) != 0 {
		t.Fatalf("jobs %v (and %d more), want %v", got, len(b.jobs), want)
	}
	for range 3 {
		b.written([]streams.Pending{chunk(0, 700, 800)})
	}
	var m dto.Metric
	if err := b.metrics.blocks.WithLabelValues("dropped").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 || len(b.jobs) != 2 {
		t.Fatalf("a full queue: %v dropped, %d queued", n, len(b.jobs))
	}
	// A catch-up's record: chunks of several streams; a stream opening a
	// bucket of large events still closes the one before.
	b = &blocks{jobs: make(chan blockJob, 4), metrics: newMetrics(nil)}
	other := chunk(3, 900, 1000)
	other.Stream, other.OpensBucket, other.Payload = "s-2", true, 101*(blockEventBytes+1)
	b.writtenRecord([]streams.Pending{chunk(0, 250, 255), other, chunk(0, 256, 260)})
	got = []blockJob{<-b.jobs, <-b.jobs}
	want = []blockJob{
		{stream: "s-1", bucket: 0, from: 250 - 512, upTo: 260},
		{stream: "s-2", bucket: 3, from: 900, closed: true},
	}
	if !slices.Equal(got, want) || len(b.jobs) != 0 {
		t.Fatalf("a record's jobs %v (and %d more), want %v", got, len(b.jobs), want)
	}

	var none *blocks // --compact-blocks=false
	none.written([]streams.Pending{chunk(0, 1, 300)})
	none.writtenRecord([]streams.Pending{chunk(0, 1, 300)})
}
