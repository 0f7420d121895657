package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// runOf is the run of r's chunks of one stream, as if each were committed
// by its own record (seq 10, 11, …, a millisecond apart).
func runOf(chunks []Chunk) ([]Part, int64, int64) {
	var parts []Part
	v := chunks[0].FirstVersion
	for i := range chunks {
		c := &chunks[i]
		parts = append(parts, Part{Seq: int64(10 + i), Time: 1_700_000_000_000 + int64(i), FirstVersion: v, LastVersion: v + c.LastVersion() - c.FirstVersion,
			Body: AppendChunkBody(nil, c)})
		v = parts[i].LastVersion + 1
	}
	return parts, parts[0].FirstVersion, v - 1
}

// inRun is chunk body b as a run holds it (appendRun): without its
// checksum when it has a matching one.
func inRun(b []byte) []byte {
	if plain, err := unchecked(b); len(b) > 0 && b[0] == formatChecked && err == nil {
		return append([]byte{format}, plain[1:]...)
	}
	return b
}

func TestRunRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := randomRecord(rng, 9, 3)
	chunks := Chunks(&r)
	parts, first, last := runOf(chunks)
	b := AppendRun(nil, parts)
	if !IsRun(b) || IsRun(parts[0].Body) {
		t.Fatal("IsRun does not tell a run from a chunk body")
	}
	if n := RunLen(parts); n < len(b) {
		t.Fatalf("RunLen %d, encoding %d bytes", n, len(b))
	}
	i := 0
	err := DecodeRun(b, first, last, func(p *Part) error {
		w := &parts[i]
		if p.Seq != w.Seq || p.Time != w.Time || p.FirstVersion != w.FirstVersion || p.LastVersion != w.LastVersion || !bytes.Equal(p.Body, inRun(w.Body)) {
			t.Fatalf("part %d = %+v, want %+v", i, *p, *w)
		}
		as, err := DecodeChunkBody(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffChunkAppends(as, chunks[i].Appends); d != "" {
			t.Fatalf("part %d: %s", i, d)
		}
		i++
		return nil
	})
	if err != nil || i != len(parts) {
		t.Fatalf("decoded %d of %d parts: %v", i, len(parts), err)
	}
	// The parts must tile the row's versions: a run is refused in a row
	// of other length, and so is every truncation of it.
	for _, bad := range [][2]int64{{first, last + 1}, {first, last - 1}, {first - 1, last}} {
		if err := DecodeRun(b, bad[0], bad[1], func(*Part) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("run of %d..%d read as %d..%d: %v", first, last, bad[0], bad[1], err)
		}
	}
	for n := 0; n < len(b); n++ {
		if err := DecodeRun(b[:n], first, last, func(*Part) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
}

// A block is a run compressed as one: it decodes to the same parts, is
// smaller than the run when its events repeat one another (as a stream's
// JSON events do), stays a plain run when they do not, and every
// truncation or a wrong length is refused.
func TestBlockRoundTrip(t *testing.T) {
	var chunks []Chunk
	for i := range 256 {
		data := fmt.Appendf(nil, `{"order":"o-%d","status":"shipped","items":[{"sku":"s-%d","qty":%d}],"carrier":"post"}`, i, i%7, i%3+1)
		chunks = append(chunks, Chunk{Stream: "orders-1", Bucket: 3, FirstVersion: int64(1 + i),
			Appends: []ChunkAppend{{ClientIDs: true, Events: []Event{{Type: "OrderShipped", Data: data, ID: [16]byte{byte(i), 1}}}}}})
	}
	parts, first, last := runOf(chunks)
	run := AppendRun(nil, parts)
	block := AppendBlock(nil, parts)
	if !IsRun(block) || block[0] != formatBlock {
		t.Fatalf("block of repetitive events not compressed (format %d)", block[0])
	}
	if len(block)*4 > len(run) {
		t.Fatalf("block %d bytes, the run %d: want under a quarter", len(block), len(run))
	}
	i := 0
	err := DecodeRun(block, first, last, func(p *Part) error {
		w := &parts[i]
		if p.Seq != w.Seq || p.Time != w.Time || p.FirstVersion != w.FirstVersion || p.LastVersion != w.LastVersion || !bytes.Equal(p.Body, inRun(w.Body)) {
			t.Fatalf("part %d = %+v, want %+v", i, *p, *w)
		}
		i++
		return nil
	})
	if err != nil || i != len(parts) {
		t.Fatalf("decoded %d of %d parts: %v", i, len(parts), err)
	}
	if err := DecodeRun(block, first, last+1, func(*Part) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("block read as a longer row: %v", err)
	}
	for n := 0; n < len(block); n++ {
		if err := DecodeRun(block[:n], first, last, func(*Part) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	// Incompressible events: the plain run.
	r := randomRecord(rand.New(rand.NewPCG(5, 6)), 3, 1)
	few, _, _ := runOf(Chunks(&r))
	if b := AppendBlock(nil, few); !bytes.Equal(b, AppendRun(nil, few)) {
		t.Fatalf("incompressible block stored as format %d, want the plain run", b[0])
	}
}

// FuzzDecodeRun: decoding never panics and fails only with ErrCorrupt;
// what decodes encodes again to a run that decodes to the same parts.
func FuzzDecodeRun(f *testing.F) {
	r := randomRecord(rand.New(rand.NewPCG(11, 12)), 8, 2)
	parts, first, last := runOf(Chunks(&r))
	for _, ps := range [][]Part{parts, parts[:1]} {
		b := AppendRun(nil, ps)
		f.Add(b, first, ps[len(ps)-1].LastVersion)
		f.Add(b[:len(b)/2], first, last)
	}
	f.Add([]byte{formatRun, 0}, int64(1), int64(1))
	f.Add(AppendBlock(nil, parts), first, last)
	f.Add([]byte{formatBlock, 0}, int64(1), int64(1))
	f.Add([]byte{formatRunChecked, 0}, int64(1), int64(1))
	f.Add(appendRun(nil, parts), first, last) // of before formatRunChecked
	// A run of before formatRunChecked whose part's body has its checksum
	// (as no run is written: appendRun strips it).
	p := parts[0]
	f.Add(cat([]byte{formatRun}, uv(1), uv(uint64(p.Seq)), binary.AppendVarint(nil, p.Time), uv(uint64(p.LastVersion-p.FirstVersion+1)),
		uv(uint64(len(p.Body))), p.Body), p.FirstVersion, p.LastVersion)
	f.Fuzz(func(t *testing.T, b []byte, first, last int64) {
		var got []Part
		err := DecodeRun(b, first, last, func(p *Part) error { got = append(got, *p); return nil })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || len(got) != 0 {
				t.Fatalf("err = %v after %d parts, want ErrCorrupt before any", err, len(got))
			}
			return
		}
		for i, p := range got {
			if i > 0 && (p.Time < got[i-1].Time || p.FirstVersion != got[i-1].LastVersion+1) || p.LastVersion < p.FirstVersion {
				t.Fatalf("part %d %+v after %+v", i, p, got[max(i-1, 0)])
			}
		}
		i := 0
		err = DecodeRun(AppendRun(nil, got), first, last, func(p *Part) error {
			if w := got[i]; p.Seq != w.Seq || p.Time != w.Time || p.FirstVersion != w.FirstVersion || !bytes.Equal(p.Body, inRun(w.Body)) {
				t.Fatalf("part %d encoded again: %+v, want %+v", i, *p, w)
			}
			i++
			return nil
		})
		if err != nil || i != len(got) {
			t.Fatalf("encoded again: %d of %d parts, %v", i, len(got), err)
		}
	})
}

// TestRunRefusedBeforeAnyPart: a corrupt run fails with ErrCorrupt before
// fn sees any of its parts (a reader sends each part as it gets it), when
// its parts fall short of the row or run past it, when trailing bytes
// follow them, when their commit times decrease (time travel searches a
// stream's chunks by time), and when a row's key near MaxInt64 would make
// the parts' versions wrap. A run that ends at MaxInt64 exactly decodes.
func TestRunRefusedBeforeAnyPart(t *testing.T) {
	const top = int64(^uint64(0) >> 1) // MaxInt64
	body := AppendChunkBody(nil, &Chunk{FirstVersion: 1, Appends: []ChunkAppend{{Events: evs(0, 1)}}})
	part := func(seq, ms, events int64) Part {
		return Part{Seq: seq, Time: ms, FirstVersion: 1, LastVersion: events, Body: body}
	}
	for _, tc := range []struct {
		name        string
		run         []byte
		first, last int64
	}{
		{"Short", AppendRun(nil, []Part{part(1, 10, 1), part(2, 11, 1)}), 1, 3},
		{"Beyond", AppendRun(nil, []Part{part(1, 10, 1), part(2, 11, 2)}), 1, 2},
		{"TrailingBytes", append(AppendRun(nil, []Part{part(1, 10, 1), part(2, 11, 1)}), 0), 1, 2},
		{"TimeDecreases", AppendRun(nil, []Part{part(1, 10, 1), part(2, 9, 1)}), 1, 2},
		{"VersionsWrap", AppendRun(nil, []Part{part(1, 10, 1), part(2, 11, 1)}), top, top},
		{"VersionsWrapInPart", AppendRun(nil, []Part{part(1, 10, 2)}), top, top},
		{"RowOutOfOrder", AppendRun(nil, []Part{part(1, 10, 1)}), 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Part
			err := DecodeRun(tc.run, tc.first, tc.last, func(p *Part) error { got = append(got, *p); return nil })
			if !errors.Is(err, ErrCorrupt) || len(got) != 0 {
				t.Fatalf("parts %+v, err %v; want ErrCorrupt and no part", got, err)
			}
		})
	}
	t.Run("EndsAtMaxInt64", func(t *testing.T) {
		var got [][2]int64
		err := DecodeRun(AppendRun(nil, []Part{part(1, 10, 1), part(2, 10, 2)}), top-2, top, func(p *Part) error {
			got = append(got, [2]int64{p.FirstVersion, p.LastVersion})
			return nil
		})
		if want := [][2]int64{{top - 2, top - 2}, {top - 1, top}}; err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("parts %v, err %v; want %v", got, err, want)
		}
	})
}
