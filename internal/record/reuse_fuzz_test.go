package record

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
)

// reuseSeeds are pairs of encodings to decode one after the other into
// the same memory: valid ones of different sizes (each way round), and a
// valid one after a corrupt one.
func reuseSeeds(valid [][]byte) [][2][]byte {
	var out [][2][]byte
	for i := range valid {
		for j := range valid {
			out = append(out, [2][]byte{valid[i], valid[j]})
		}
		out = append(out, [2][]byte{valid[i][:len(valid[i])/2], valid[i]})
	}
	return out
}

// FuzzDecodeRecordInto decodes two records one after the other into the
// same Buffers and decompression buffer, as a feed read does: each result
// is what a fresh decode of its bytes gives (an error for the same
// inputs), whatever the memory held before.
func FuzzDecodeRecordInto(f *testing.F) {
	rng := rand.New(rand.NewPCG(21, 22))
	r1, r2 := randomRecord(rng, 12, 3), randomRecord(rng, 2, 1)
	big := Record{Appends: []Append{{Stream: "order-1", FirstVersion: 1, Events: jsonEvents(40)}}}
	valid := [][]byte{AppendRecord(nil, &r1), AppendRecord(nil, &r2), AppendRecord(nil, &big), readGolden(f, "record")}
	for _, s := range reuseSeeds(valid) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var (
			bufs Buffers
			buf  []byte
		)
		for _, in := range [][]byte{a, b, a} {
			want, wantErr := DecodeRecord(bytes.Clone(in))
			got, fresh, err := DecodeRecordInto(in, buf, &bufs)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("into used buffers: err %v, fresh decode: %v", err, wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				continue
			}
			if d := diffRecord(&got, &want); d != "" {
				t.Fatalf("into used buffers: %s", d)
			}
			if fresh != nil {
				buf = fresh[:0]
			}
		}
	})
}

// FuzzDecodeChunkBodyInto is FuzzDecodeRecordInto for chunk bodies and
// ChunkBuffers, as a stream read decodes them.
func FuzzDecodeChunkBodyInto(f *testing.F) {
	r := randomRecord(rand.New(rand.NewPCG(23, 24)), 12, 2)
	valid := [][]byte{readGolden(f, "chunk")}
	for _, c := range Chunks(&r)[:3] {
		valid = append(valid, AppendChunkBody(nil, &c))
	}
	valid = append(valid, AppendChunkBody(nil, &Chunk{Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(40)}}}))
	for _, s := range reuseSeeds(valid) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var bufs ChunkBuffers
		for _, in := range [][]byte{a, b, a} {
			want, wantErr := DecodeChunkBody(bytes.Clone(in))
			got, err := DecodeChunkBodyInto(in, &bufs)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("into used buffers: err %v, fresh decode: %v", err, wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				continue
			}
			if d := diffChunkAppends(got, want); d != "" {
				t.Fatalf("into used buffers: %s", d)
			}
		}
	})
}

// FuzzDecodeChunkIDs: decoding a chunk row's ids column never panics and
// fails only with ErrCorrupt; what it accepts has strictly increasing
// versions from first, and is what AppendChunkIDs makes of a chunk with
// those ids at those versions (or, an unchecked list of older builds, its
// bytes without the checksum, under the old format byte).
func FuzzDecodeChunkIDs(f *testing.F) {
	r := randomRecord(rand.New(rand.NewPCG(25, 26)), 12, 2)
	for _, c := range Chunks(&r) {
		f.Add(AppendChunkIDs(nil, &c), c.FirstVersion)
	}
	f.Add([]byte{}, int64(1))
	f.Add([]byte{idsFormat, 0x80}, int64(1))
	f.Add(append([]byte{idsFormat, 0}, make([]byte, 16)...), int64(1)) // unchecked, of older builds
	f.Fuzz(func(t *testing.T, b []byte, first int64) {
		if first < 1 || first > 1<<62 {
			return // a row's first version
		}
		type entry struct {
			id uuid.UUID
			v  int64
		}
		var got []entry
		err := DecodeChunkIDs(b, first, func(id uuid.UUID, v int64) { got = append(got, entry{id, v}) })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			return
		}
		for i := range got {
			if got[i].v < first || i > 0 && got[i].v <= got[i-1].v {
				t.Fatalf("entry %d at version %d (first %d, entries %v)", i, got[i].v, first, got)
			}
		}
		if len(got) > 0 && got[len(got)-1].v-first > 1<<16 {
			return // the chunk below would be too large to build here
		}
		// The chunk those entries describe: an event at each version up
		// to the last, client ids where there is an entry.
		var c Chunk
		c.FirstVersion = first
		next := first
		for _, e := range got {
			if e.v > next {
				c.Appends = append(c.Appends, ChunkAppend{Events: make([]Event, e.v-next)})
			}
			c.Appends = append(c.Appends, ChunkAppend{ClientIDs: true, Events: []Event{{ID: e.id}}})
			next = e.v + 1
		}
		again := AppendChunkIDs(nil, &c)
		if b[0] == idsFormat {
			again = append([]byte{idsFormat}, again[1:len(again)-4]...)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encodes to other bytes:\n got %x\nwant %x", again, b)
		}
	})
}
