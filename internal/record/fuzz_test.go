package record

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// addSeeds adds valid encodings, their halves and a few lying inputs, so
// the fuzzer starts from real structure.
func addSeeds(f *testing.F, golden string, valid [][]byte) {
	f.Add(readGolden(f, golden))
	for _, b := range valid {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{format, 0})
	f.Add(cat([]byte{format}, uv(MaxEvents), bytes.Repeat([]byte{1}, 16)))
	f.Add(checkedOf([]byte{format, 0}))
	f.Add([]byte{formatChecked, 0})
}

// uncheckedPlain is the plain encoding b holds, without a checksum
// (format): the checked one's checksum verified, its format byte format.
func uncheckedPlain(tb testing.TB, b []byte) []byte {
	tb.Helper()
	plain, err := plainEncoding(b)
	if err != nil {
		tb.Fatal(err)
	}
	return append([]byte{format}, plain[1:]...)
}

// FuzzDecodeRecord: decoding never panics and fails only with ErrCorrupt;
// what decodes re-encodes to the same plain bytes (the decoder refuses
// non-minimal varints and unknown flags, so the plain encoding is
// canonical, with a checksum or without; a compressed one is any zstd
// frame of it);
// and Chunks of whatever decodes is a valid split whose bodies round-trip.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	r1, r2 := randomRecord(rng, 3, 2), randomRecord(rng, 12, 3)
	big := Record{Appends: []Append{{Stream: "order-1", Bucket: 0, FirstVersion: 1, Events: jsonEvents(20)}}}
	addSeeds(f, "record", [][]byte{AppendRecord(nil, &r1), AppendRecord(nil, &r2), AppendRecord(nil, &Record{}), AppendRecord(nil, &big)})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			return
		}
		// The plain encoding is canonical; a compressed one is any frame of
		// it, and what AppendRecord makes decodes to the same record.
		plain := uncheckedPlain(t, b)
		if again := appendPlainRecord(nil, &r, recordLen(&r)); !bytes.Equal(again, plain) {
			t.Fatalf("re-encodes to other bytes:\n got %x\nwant %x", again, plain)
		}
		if again := mustDecodeRecord(t, AppendRecord(nil, &r)); diffRecord(&again, &r) != "" {
			t.Fatalf("encoded again: %s", diffRecord(&again, &r))
		}
		// Decoded records need not be ones the sequencer makes (streams
		// may repeat at any versions); checkChunks holds for any.
		chunks := Chunks(&r)
		checkChunks(t, &r, chunks)
		for i := range chunks {
			body := AppendChunkBody(nil, &chunks[i])
			as, err := DecodeChunkBody(body)
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if d := diffChunkAppends(as, chunks[i].Appends); d != "" {
				t.Fatalf("chunk %d: %s", i, d)
			}
		}
	})
}

// FuzzDecodeChunkBody: decoding never panics and fails only with
// ErrCorrupt; what decodes re-encodes to the same bytes.
func FuzzDecodeChunkBody(f *testing.F) {
	r := randomRecord(rand.New(rand.NewPCG(9, 10)), 12, 2)
	var valid [][]byte
	for _, c := range Chunks(&r) {
		valid = append(valid, AppendChunkBody(nil, &c))
	}
	addSeeds(f, "chunk", valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := DecodeChunkBody(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			return
		}
		// ChunkBodyEvents counts what decodes, from its plain encoding.
		n := 0
		for _, a := range as {
			n += len(a.Events)
		}
		plain := uncheckedPlain(t, b)
		if got, err := ChunkBodyEvents(plain); got != n || err != nil {
			t.Fatalf("ChunkBodyEvents = %d, %v; decoded %d events", got, err, n)
		}
		c := Chunk{Appends: as}
		if again := appendPlainChunkBody(nil, &c, chunkBodyLen(&c)); !bytes.Equal(again, plain) {
			t.Fatalf("re-encodes to other bytes:\n got %x\nwant %x", again, plain)
		}
		if d := diffChunkAppends(mustDecodeChunkBody(t, AppendChunkBody(nil, &c)), as); d != "" {
			t.Fatalf("encoded again: %s", d)
		}
	})
}
