package streams_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestReadOfBlocksHoldsAPageOfBytes: a read whose consumer is slow (a
// stream subscription catching up for a client that reads slowly, an
// NDJSON replay) holds about one page of rows fetched ahead of it. Pages
// were 5,000 rows whatever their size, and a complete block is one row of
// 256 events (Compact), so a stream of blocks came back a whole bucket at
// a time: here 24 blocks of poorly compressible events, 12 MiB stored,
// all held while the consumer sat on its first event. Pages are now sized
// by the rows' stored bytes (readPageBytes).
func TestReadOfBlocksHoldsAPageOfBytes(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	s := streams.New(cassandratest.Session(t, o), 5000, time.Hour)
	ctx := context.Background()
	const (
		blocks = 24
		events = blocks * streams.BlockEvents
		per    = 64 // events a chunk
	)
	stream := log.StreamID("pagebytes-1")
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 2200) // about 3 KB of base64: compresses poorly
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	var cs []streams.Pending
	for v := int64(1); v <= events; v += per {
		evs := make([]record.Event, per)
		for j := range evs {
			for k := range raw {
				raw[k] = byte(rng.Uint32())
			}
			evs[j] = record.Event{ID: uuid.New(), Type: "t", Data: fmt.Appendf(nil, `{"v":%d,"p":"%s"}`, v+int64(j), base64.StdEncoding.EncodeToString(raw))}
		}
		c := record.Chunk{Stream: stream, FirstVersion: v, OpensBucket: v == 1, Appends: []record.ChunkAppend{{ClientIDs: true, Events: evs}}}
		cs = append(cs, streams.NewPending(v, t0.Add(time.Duration(v)*time.Millisecond), &c))
	}
	for i := range cs {
		if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	cs = nil
	if k, err := s.Compact(ctx, stream, 0, 1, events); err != nil || k != blocks {
		t.Fatalf("compacted %d blocks, %v; want %d", k, err, blocks)
	}
	stored := storedBytes(t, cassandratest.Session(t, o), stream, events)

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// A read first, so that what reads keep (pools, prepared statements)
	// is there before the measure.
	if err := s.Read(ctx, log.ReadRange{Stream: stream, Limit: 1, Borrowed: true}, func(*log.RecordedEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	before := heap()
	first, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	next := int64(1)
	go func() {
		done <- s.Read(ctx, log.ReadRange{Stream: stream, Borrowed: true}, func(e *log.RecordedEvent) error {
			if e.Version != next {
				return fmt.Errorf("version %d, want %d", e.Version, next)
			}
			if next++; next == 2 {
				close(first)
				<-resume // a client that does not read for a while
			}
			return nil
		})
	}()
	<-first
	time.Sleep(500 * time.Millisecond) // the read ahead fetches what it will
	held := heap() - min(heap(), before)
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if next != events+1 {
		t.Fatalf("read up to %d, want %d", next-1, events)
	}
	t.Logf("%d blocks in %d MiB stored; a read waiting on its first event held %d MiB", blocks, stored>>20, held>>20)
	if held > uint64(stored)/2 { // 21 MiB of 17 stored when pages were 5,000 rows
		t.Fatalf("a read waiting on its first event held %d MiB (%d MiB stored)", held>>20, stored>>20)
	}
}
