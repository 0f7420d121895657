package streams

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestAppendPendingShareSlab: chunks encoded one after another into one
// slab each keep their own rows, byte for byte what a chunk encoded alone
// writes (NewPending's own allocation is sized to hold them at once),
// also when the slab has to grow and when a body is compressed.
func TestAppendPendingShareSlab(t *testing.T) {
	at := time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)
	var chunks []record.Chunk
	for i := range 5 {
		c := record.Chunk{Stream: log.StreamID(fmt.Sprintf("s-%d", i)), Bucket: int64(i), FirstVersion: int64(1 + 10*i), OpensBucket: i%2 == 0}
		for a := range 1 + i%3 {
			ca := record.ChunkAppend{ClientIDs: a%2 == 0}
			for e := range 1 + i {
				data := fmt.Sprintf(`{"i":%d,"a":%d,"e":%d}`, i, a, e)
				if i == 4 {
					data = `"` + strings.Repeat("compressible ", 2000) + `"` // past the compression threshold
				}
				ca.Events = append(ca.Events, record.Event{ID: uuid.New(), Type: "T", Data: []byte(data)})
			}
			c.Appends = append(c.Appends, ca)
		}
		chunks = append(chunks, c)
	}
	for _, capacity := range []int{0, 1 << 20} { // growing, and room for all
		slab := make([]byte, 0, capacity)
		var ps []Pending
		for i := range chunks {
			var p Pending
			p, slab = appendPending(slab, 7, at, &chunks[i])
			ps = append(ps, p)
		}
		for i, p := range ps {
			c := &chunks[i]
			alone := NewPending(7, at, c)
			if !bytes.Equal(p.Body, record.AppendChunkBody(nil, c)) || !bytes.Equal(p.IDs, record.AppendChunkIDs(nil, c)) ||
				!bytes.Equal(p.EventIDs, alone.EventIDs) || p.Payload != alone.Payload {
				t.Fatalf("capacity %d: chunk %d's rows differ from its own encoding", capacity, i)
			}
			if p.Stream != c.Stream || p.Bucket != c.Bucket || p.FirstVersion != c.FirstVersion || p.LastVersion != c.LastVersion() ||
				p.OpensBucket != c.OpensBucket || p.Seq != 7 || !p.Time.Equal(at) || p.Events() != int(c.LastVersion()-c.FirstVersion+1) {
				t.Fatalf("capacity %d: chunk %d: %+v", capacity, i, p)
			}
			apps, err := record.DecodeChunkBody(p.Body)
			if err != nil || len(apps) != len(c.Appends) {
				t.Fatalf("capacity %d: chunk %d decodes to %d appends, %v", capacity, i, len(apps), err)
			}
			var want, got []uuid.UUID
			for _, a := range c.Appends {
				for _, e := range a.Events {
					if a.ClientIDs {
						want = append(want, e.ID)
					}
				}
			}
			p.ClientIDs(func(id uuid.UUID, _ int64) { got = append(got, id) })
			if !slices.Equal(got, want) {
				t.Fatalf("capacity %d: chunk %d: client ids %v, want %v", capacity, i, got, want)
			}
		}
	}
}

// TestNewPendingOneAllocation: a chunk's rows take one allocation of their
// own (the size NewPending reserves is an upper bound of what they take).
func TestNewPendingOneAllocation(t *testing.T) {
	c := record.Chunk{Stream: "s-1", FirstVersion: 1, Appends: []record.ChunkAppend{
		{ClientIDs: true, Events: []record.Event{{ID: uuid.New(), Type: "Type", Data: []byte(`{"a":1}`), Metadata: []byte(`{}`)}}},
		{Events: []record.Event{{ID: uuid.New(), Type: "T", Data: []byte(strings.Repeat("x", 300))}, {ID: uuid.New(), Type: "U"}}},
	}}
	if n := testing.AllocsPerRun(100, func() { NewPending(1, time.Time{}, &c) }); n != 1 {
		t.Fatalf("%v allocations, want 1", n)
	}
}
