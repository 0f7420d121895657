package streams

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// pending is a stream's one-chunk tail: n events of size bytes in bucket.
func pending(stream string, bucket int64, opens bool, n, size int) []Pending {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Type: "t", Data: []byte(strings.Repeat("x", size))}
	}
	return []Pending{NewPending(1, time.Time{}, &record.Chunk{Stream: log.StreamID(stream), Bucket: bucket, FirstVersion: 1,
		OpensBucket: opens, Appends: []record.ChunkAppend{{ClientIDs: true, Events: evs}}})}
}

func TestPacks(t *testing.T) {
	var ws [][]Pending
	for i := range 25 {
		ws = append(ws, pending(fmt.Sprintf("s-%d", i), 0, false, 1, 200))
	}
	opens := pending("new", 0, true, 1, 200)
	big := pending("big", 0, false, 1, packBytes)
	twoBuckets := append(pending("roll", 0, false, 1, 10), pending("roll", 1, true, 1, 10)...)
	ws = append(ws, opens, big, twoBuckets)
	heavy := make([][]Pending, 0)
	for i := range 6 {
		heavy = append(heavy, pending(fmt.Sprintf("h-%d", i), 0, false, 1, 1500))
	}
	ws = append(ws, heavy...)

	packs := Packs(ws)
	seen := map[log.StreamID]int{}
	alone := map[log.StreamID]bool{}
	for _, p := range packs {
		if len(p) > packStreams {
			t.Fatalf("a pack of %d streams, more than %d", len(p), packStreams)
		}
		size := 0
		for _, w := range p {
			seen[w[0].Stream]++
			n, _ := packable(w)
			size += n
		}
		if len(p) == 1 {
			alone[p[0][0].Stream] = true
		} else if size > packBytes {
			t.Fatalf("a pack of %d bytes, more than %d", size, packBytes)
		}
	}
	if len(seen) != len(ws) {
		t.Fatalf("%d streams in the packs, want %d", len(seen), len(ws))
	}
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("stream %s in %d packs", s, n)
		}
	}
	for _, s := range []log.StreamID{"big", "roll"} {
		if !alone[s] {
			t.Errorf("stream %s shares a pack; a stream that spans two buckets or is large goes alone", s)
		}
	}
	if alone["new"] {
		t.Error("a small stream that opens a bucket goes alone; it may share a pack (its index row written first)")
	}
	// Packs are filled greedily: a pack of packable streams is closed only
	// when the next packable stream would not fit it (streams that go
	// alone do not close it).
	var prev [][]Pending
	prevSize := 0
	for _, p := range packs {
		if len(p) == 1 {
			if _, ok := packable(p[0]); !ok {
				continue
			}
		}
		size := 0
		for _, w := range p {
			n, _ := packable(w)
			size += n
		}
		if prev != nil {
			first, _ := packable(p[0])
			if len(prev) < packStreams && prevSize+first <= packBytes {
				t.Errorf("a pack of %d streams (%d bytes) was closed though the next stream (%d bytes) fitted", len(prev), prevSize, first)
			}
		}
		prev, prevSize = p, size
	}
}
