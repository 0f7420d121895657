package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// Every change of a single byte, to every other value, must be reported as
// ErrCorrupt, or decode to exactly the original state (a change zstd ignores
// is harmless; a change it does not is caught by the checksum).
func TestSingleByteChanges(t *testing.T) {
	c := mustCodec(t, 1<<20)
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"Empty", nil},
		{"Tiny", []byte(`{"v":1}`)},
		{"Aggregate", aggregateJSON(t, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob := c.Encode(nil, tc.state)
			mut := make([]byte, len(blob))
			var same int
			for i := range blob {
				for d := 1; d < 256; d++ {
					copy(mut, blob)
					mut[i] ^= byte(d)
					got, err := c.Decode(nil, mut)
					switch {
					case err == nil && bytes.Equal(got, tc.state):
						same++
					case err == nil:
						t.Fatalf("byte %d ^ %#x: decoded to different state", i, d)
					case !errors.Is(err, ErrCorrupt):
						t.Fatalf("byte %d ^ %#x: err = %v, want ErrCorrupt", i, d, err)
					}
				}
			}
			t.Logf("%d-byte blob: %d of %d changes decoded to the original", len(blob), same, len(blob)*255)
		})
	}
}

func TestTruncated(t *testing.T) {
	c := mustCodec(t, 1<<20)
	for _, state := range [][]byte{nil, []byte("x"), aggregateJSON(t, 20)} {
		blob := c.Encode(nil, state)
		for n := range len(blob) {
			if _, err := c.Decode(nil, blob[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%d-byte blob cut to %d: err = %v, want ErrCorrupt", len(blob), n, err)
			}
		}
	}
}

func TestTrailingBytes(t *testing.T) {
	c := mustCodec(t, 1<<20)
	state := aggregateJSON(t, 2)
	blob := c.Encode(nil, state)
	frame := blob[len(appendHeader(nil, state)):]
	for _, tc := range []struct {
		name  string
		extra []byte
	}{
		{"Byte", []byte{0}},
		{"Zeros", make([]byte, 16)},
		{"SecondFrame", frame},
		{"SkippableFrame", []byte{0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mut := append(bytes.Clone(blob), tc.extra...)
			if _, err := c.Decode(nil, mut); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// craftBlob builds a blob by hand from the documented format: our header
// declaring length, then a single-segment zstd frame header declaring fcs
// (8-byte field) and one empty raw last block.
func craftBlob(length, fcs uint64) []byte {
	b := []byte("ELS\x01")
	b = binary.AppendUvarint(b, length)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, 0x28, 0xb5, 0x2f, 0xfd) // zstd magic
	b = append(b, 3<<6|1<<5)              // 8-byte FCS, single segment
	b = binary.LittleEndian.AppendUint64(b, fcs)
	return append(b, 1, 0, 0) // raw block, size 0, last
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Oversized or lying blobs are rejected without allocating anything near
// their claimed size.
func TestLimits(t *testing.T) {
	const limit = 1 << 20
	// Generous against the claims below (≥ 1 MiB, up to 1 TiB), and above
	// zstd's per-call overhead plus one 128 KiB block of overshoot.
	const maxAlloc = 512 << 10
	c := mustCodec(t, limit)
	big := mustCodec(t, 64<<20)
	mustDecode(t, c, nil, c.Encode(nil, aggregateJSON(t, 50))) // warm decoder buffers

	large := aggregateJSON(t, largeLines)
	largeBlob := big.Encode(nil, large)
	lying := bytes.Clone(largeBlob)
	{
		// Keep the 5 MB frame but make both headers claim 1000 bytes.
		_, frame, err := parseHeader(lying)
		if err != nil {
			t.Fatal(err)
		}
		if frame[4] != 2<<6|1<<5 { // 4-byte FCS, single segment
			t.Fatalf("unexpected frame header byte %#x", frame[4])
		}
		binary.LittleEndian.PutUint32(frame[5:], 1000)
		lying = append(appendHeader(nil, large[:1000]), frame...)
	}

	for _, tc := range []struct {
		name string
		blob []byte
		want error
	}{
		{"TooLarge", largeBlob, ErrTooLarge},
		{"TooLargeClaimed1TiB", craftBlob(1<<40, 1<<40), ErrTooLarge},
		{"TooLargeLimitPlusOne", craftBlob(limit+1, limit+1), ErrTooLarge},
		{"LengthsDisagree", craftBlob(1<<40, 0), ErrCorrupt},
		{"FrameLies", lying, ErrCorrupt},
		{"AtLimitButEmptyFrame", craftBlob(limit, limit), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = c.Decode(nil, tc.blob) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("%v; allocated %d bytes", err, n)
			// AtLimit legitimately allocates the declared limit up front.
			if want := uint64(maxAlloc); tc.name != "AtLimitButEmptyFrame" && n > want {
				t.Fatalf("allocated %d bytes, want ≤ %d", n, want)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	c := mustCodec(t, 1<<20)
	good := c.Encode(nil, []byte("state"))
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"Nil", nil},
		{"OtherMagic", append([]byte("XLS"), good[3:]...)},
		{"FutureVersion", append([]byte("ELS\x02"), good[4:]...)},
		// 5 encoded in two bytes: valid uvarint, but not the minimal form.
		{"NonMinimalLength", append([]byte("ELS\x01\x85\x00"), good[5:]...)},
		{"LengthOverflow", []byte("ELS\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
		{"SkippableFrame", append(bytes.Clone(good[:9]), 0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Decode(nil, tc.blob); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}
