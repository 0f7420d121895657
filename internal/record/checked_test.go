package record

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// flips calls fn with b changed in one bit, for every bit of b.
func flips(b []byte, fn func(i int, bit byte, mut []byte)) {
	mut := make([]byte, len(b))
	for i := range b {
		for bit := range 8 {
			copy(mut, b)
			mut[i] ^= 1 << bit
			fn(i, byte(bit), mut)
		}
	}
}

// TestFlippedByteIsCorrupt: a log record or chunk body stored plain (under
// compressMin, or not made smaller by compression) with any one bit
// changed is ErrCorrupt, as a compressed one is: an event's id, type or
// data changed on disk is never served as another event.
func TestFlippedByteIsCorrupt(t *testing.T) {
	golden := goldenRecord()
	one := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(1)}}}
	noise := Record{Appends: []Append{{Stream: "s", FirstVersion: 1, Events: []Event{{Type: "t", Data: make([]byte, 1024)}}}}}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise.Appends[0].Events[0].Data {
		noise.Appends[0].Events[0].Data[i] = byte(rng.Uint32())
	}
	decodeRecord := func(b []byte) error { _, err := DecodeRecord(b); return err }
	decodeChunk := func(b []byte) error { _, err := DecodeChunkBody(b); return err }
	for _, tc := range []struct {
		name   string
		b      []byte
		decode func([]byte) error
	}{
		{"Record", AppendRecord(nil, &golden), decodeRecord},
		{"ChunkBody", AppendChunkBody(nil, &Chunks(&golden)[0]), decodeChunk},
		{"OneEventChunkBody", AppendChunkBody(nil, &one), decodeChunk},
		{"IncompressibleRecord", AppendRecord(nil, &noise), decodeRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.b); err != nil {
				t.Fatalf("intact: %v", err)
			}
			flips(tc.b, func(i int, bit byte, mut []byte) {
				if err := tc.decode(mut); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%d-byte encoding, byte %d bit %d flipped: err = %v, want ErrCorrupt", len(tc.b), i, bit, err)
				}
			})
		})
	}
}

// TestRunFlippedByteRefusedBeforeAnyPart: a run row (AppendRun, or a
// block) with any one bit changed, in a part's body included, fails with
// ErrCorrupt before any of its parts is handed on: a forward read sends
// each part as it decodes it, and must not send a run's first parts and
// then fail on a later one.
func TestRunFlippedByteRefusedBeforeAnyPart(t *testing.T) {
	var parts []Part
	for i := range 3 {
		c := Chunk{FirstVersion: int64(i + 1), Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(1)}}}
		parts = append(parts, Part{Seq: int64(10 + i), Time: 1_765_000_000_000 + int64(i), FirstVersion: int64(i + 1), LastVersion: int64(i + 1), Body: AppendChunkBody(nil, &c)})
	}
	block := blockParts(t)[:16]
	for _, tc := range []struct {
		name string
		b    []byte
		last int64
	}{
		{"Run", AppendRun(nil, parts), 3},
		{"Block", AppendBlock(nil, block), 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What a reader does: each part's body decoded as it comes.
			read := func(b []byte) ([][]byte, error) {
				var bodies [][]byte
				err := DecodeRun(b, 1, tc.last, func(p *Part) error {
					bodies = append(bodies, bytes.Clone(p.Body))
					_, err := DecodeChunkBody(p.Body)
					return err
				})
				return bodies, err
			}
			want, err := read(tc.b)
			if len(want) != int(tc.last) || err != nil {
				t.Fatalf("intact: %d parts, %v", len(want), err)
			}
			flips(tc.b, func(i int, bit byte, mut []byte) {
				got, err := read(mut)
				switch {
				case err == nil && slices.EqualFunc(got, want, bytes.Equal):
					// A bit no decoder reads (a zstd frame header's
					// unused bit): the row is the one written.
				case !errors.Is(err, ErrCorrupt) || len(got) != 0:
					t.Fatalf("%d-byte run, byte %d bit %d flipped: %d parts handed on, err = %v; want none and ErrCorrupt", len(tc.b), i, bit, len(got), err)
				}
			})
		})
	}
}

// TestUncheckedRowsDecode: rows written before the checksums (a plain
// record, chunk body or run of format 1 and 4) still decode.
func TestUncheckedRowsDecode(t *testing.T) {
	r := goldenRecord()
	c := Chunks(&r)[0]
	rec := appendPlainRecord(nil, &r, recordLen(&r))
	if got := mustDecodeRecord(t, rec); diffRecord(&got, &r) != "" {
		t.Fatalf("record: %s", diffRecord(&got, &r))
	}
	body := appendPlainChunkBody(nil, &c, chunkBodyLen(&c))
	if d := diffChunkAppends(mustDecodeChunkBody(t, body), c.Appends); d != "" {
		t.Fatalf("chunk body: %s", d)
	}
	parts := goldenRun(Chunks(&r))
	parts[0].Body = body
	n := 0
	err := DecodeRun(appendRun(nil, parts), 1, 4, func(p *Part) error {
		if !bytes.Equal(p.Body, inRun(parts[n].Body)) {
			t.Fatalf("part %d: body %x, want %x", n, p.Body, inRun(parts[n].Body))
		}
		n++
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("run: %d parts, %v", n, err)
	}
}

// TestRunKeepsBodyOfWrongChecksum: a part's body whose checksum does not
// match (changed in memory before the run was encoded) goes into the run
// as it is, not under a new checksum that would hide the change: decoding
// that part's body fails.
func TestRunKeepsBodyOfWrongChecksum(t *testing.T) {
	c := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{Events: jsonEvents(1)}}}
	good := AppendChunkBody(nil, &c)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	parts := []Part{
		{Seq: 1, Time: 10, FirstVersion: 1, LastVersion: 1, Body: good},
		{Seq: 2, Time: 11, FirstVersion: 2, LastVersion: 2, Body: bad},
	}
	for _, run := range [][]byte{AppendRun(nil, parts), AppendBlock(nil, parts)} {
		var errs []error
		err := DecodeRun(run, 1, 2, func(p *Part) error {
			_, err := DecodeChunkBody(p.Body)
			errs = append(errs, err)
			return nil
		})
		if err != nil || len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], ErrCorrupt) {
			t.Fatalf("format %d: run %v, parts' bodies %v; want the second ErrCorrupt", run[0], err, errs)
		}
	}
}
