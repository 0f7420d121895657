package snapshot

import (
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// benchStates are the realistic aggregate states the benchmarks run on.
func benchStates(b *testing.B) []struct {
	name  string
	state []byte
} {
	return []struct {
		name  string
		state []byte
	}{
		{"100KB", aggregateJSON(b, smallLines)},
		{"5MB", aggregateJSON(b, largeLines)},
	}
}

func mustCodec(tb testing.TB, maxDecoded int) *Codec {
	tb.Helper()
	c, err := NewCodec(maxDecoded)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// BenchmarkEncode reports MB/s of state encoded and the ratio JSON/blob.
func BenchmarkEncode(b *testing.B) {
	c := mustCodec(b, 64<<20)
	for _, tc := range benchStates(b) {
		b.Run(tc.name, func(b *testing.B) {
			var blob []byte
			b.SetBytes(int64(len(tc.state)))
			b.ReportAllocs()
			for b.Loop() {
				blob = c.Encode(blob[:0], tc.state)
			}
			b.ReportMetric(float64(len(tc.state))/float64(len(blob)), "ratio")
		})
	}
}

// BenchmarkDecode reports MB/s of state decoded (so it compares with Encode).
func BenchmarkDecode(b *testing.B) {
	c := mustCodec(b, 64<<20)
	for _, tc := range benchStates(b) {
		b.Run(tc.name, func(b *testing.B) {
			blob := c.Encode(nil, tc.state)
			var out []byte
			b.SetBytes(int64(len(tc.state)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = c.Decode(out[:0], blob); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tc.state))/float64(len(blob)), "ratio")
		})
	}
}

// BenchmarkLevels compares raw zstd levels on the same states; it is the
// evidence for the level constant in codec.go. Run it with -benchtime=20x.
func BenchmarkLevels(b *testing.B) {
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	for _, tc := range benchStates(b) {
		for _, l := range levels {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true))
			if err != nil {
				b.Fatal(err)
			}
			blob := enc.EncodeAll(tc.state, nil)
			b.Run(fmt.Sprintf("%s/%s/encode", tc.name, l), func(b *testing.B) {
				b.SetBytes(int64(len(tc.state)))
				for b.Loop() {
					blob = enc.EncodeAll(tc.state, blob[:0])
				}
				b.ReportMetric(float64(len(tc.state))/float64(len(blob)), "ratio")
			})
			b.Run(fmt.Sprintf("%s/%s/decode", tc.name, l), func(b *testing.B) {
				out := make([]byte, 0, len(tc.state))
				b.SetBytes(int64(len(tc.state)))
				for b.Loop() {
					if out, err = dec.DecodeAll(blob, out[:0]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(tc.state))/float64(len(blob)), "ratio")
			})
			enc.Close()
		}
	}
}
