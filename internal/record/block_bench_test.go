package record

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
)

// blockParts is a block of 256 1-event appends of one stream: ~200-byte
// JSON events of a few types, as an aggregate's commands write them.
func blockParts(tb testing.TB) []Part {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"OrderLineAdded", "OrderLineRemoved", "DiscountApplied", "AddressChanged"}
	parts := make([]Part, 256)
	for i := range parts {
		data := fmt.Sprintf(`{"order_id":"ord-%06x","sku":"SKU-%05d","quantity":%d,"unit_price":{"amount":%d,"currency":"EUR"},"added_by":"user-%d","note":"%s","channel":"web"}`,
			r.IntN(1<<24), r.IntN(100000), 1+r.IntN(9), 100+r.IntN(10000), r.IntN(5000), []string{"", "gift wrap please", "leave at the door", "call first"}[r.IntN(4)])
		c := Chunk{FirstVersion: int64(i + 1), Appends: []ChunkAppend{{ClientIDs: true, Events: []Event{{ID: uuid.Must(uuid.NewV7()), Type: types[r.IntN(len(types))], Data: json.RawMessage(data)}}}}}
		body, err := PlainChunkBody(AppendChunkBody(nil, &c))
		if err != nil {
			tb.Fatal(err)
		}
		parts[i] = Part{Seq: int64(1000 + i), Time: 1_765_000_000_000 + int64(i*7), FirstVersion: int64(i + 1), LastVersion: int64(i + 1), Body: body}
	}
	return parts
}

// BenchmarkBlockDecode decodes a block of 256 1-event appends and each of
// its parts' bodies, as a lending replay does (into buffers kept from one
// block to the next): ns/op is a block's, so ns/op/256 is an event's.
// Unpack is the block's decompression alone, Parts the parts' decoding
// from the plain run; the Unpack variants compress the block at other
// zstd levels.
func BenchmarkBlockDecode(b *testing.B) {
	parts := blockParts(b)
	blk := AppendBlock(nil, parts)
	run := AppendRun(nil, parts)
	unchecked := appendRun(nil, parts) // as a block holds it
	bufs := new(ChunkBuffers)
	decode := func(b *testing.B, row []byte, bodies bool) {
		var buf []byte
		for b.Loop() {
			fresh, err := DecodeRunIn(row, buf, 1, 256, func(p *Part) error {
				if !bodies {
					return nil
				}
				_, err := DecodeChunkBodyInto(p.Body, bufs)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			if fresh != nil {
				buf = fresh[:0]
			}
		}
		b.ReportMetric(float64(len(blk))/float64(len(run)), "stored/plain")
	}
	b.Run("Block", func(b *testing.B) { decode(b, blk, true) })
	b.Run("BlockFresh", func(b *testing.B) { // a new buffer a block, as a read that does not lend
		for b.Loop() {
			err := DecodeRun(blk, 1, 256, func(p *Part) error {
				_, err := DecodeChunkBodyInto(p.Body, bufs)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unpack", func(b *testing.B) { decode(b, blk, false) })
	b.Run("Parts", func(b *testing.B) { decode(b, run, true) })
	for _, l := range []zstd.EncoderLevel{zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithWindowSize(512<<10))
		if err != nil {
			b.Fatal(err)
		}
		alt := append([]byte{formatBlock}, binary.AppendUvarint(nil, uint64(len(unchecked)-1))...)
		alt = enc.EncodeAll(unchecked[1:], alt)
		b.Run("Unpack"+l.String(), func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				fresh, err := DecodeRunIn(alt, buf, 1, 256, func(p *Part) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				buf = fresh[:0]
			}
			b.ReportMetric(float64(len(alt))/float64(len(unchecked)), "stored/plain")
		})
	}
}

// BenchmarkBlockCompactCheck is what a compaction spends on a block of 256
// 1-event appends: Count, ChunkBodyEvents over each part's plain body (its
// check that the bodies hold their versions), against Encode, the block's
// compression (AppendBlock).
func BenchmarkBlockCompactCheck(b *testing.B) {
	parts := blockParts(b)
	b.Run("Count", func(b *testing.B) {
		for b.Loop() {
			for i := range parts {
				if n, err := ChunkBodyEvents(parts[i].Body); n != 1 || err != nil {
					b.Fatal(n, err)
				}
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = AppendBlock(dst[:0], parts)
		}
	})
}
