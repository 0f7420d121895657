package record

import (
	"testing"
)

// BenchmarkPlain encodes and decodes what is stored plain: a log record
// of one 1-event append (~230 bytes, a commit group of one) and a 1-event
// chunk body (~200 bytes), ~150-byte JSON events; the decodes into
// buffers kept from one to the next, as a feed read and a replay do. The
// cost of their checksum (formatChecked).
func BenchmarkPlain(b *testing.B) {
	r := Record{Appends: []Append{{Stream: "order-000001", FirstVersion: 17, ClientIDs: true, Events: jsonEvents(1)}}}
	c := Chunks(&r)[0]
	rec, body := AppendRecord(nil, &r), AppendChunkBody(nil, &c)
	b.Run("RecordEncode", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = AppendRecord(dst[:0], &r)
		}
	})
	b.Run("RecordDecode", func(b *testing.B) {
		var bufs Buffers
		for b.Loop() {
			if _, _, err := DecodeRecordInto(rec, nil, &bufs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChunkEncode", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = AppendChunkBody(dst[:0], &c)
		}
	})
	b.Run("ChunkDecode", func(b *testing.B) {
		bufs := new(ChunkBuffers)
		for b.Loop() {
			if _, err := DecodeChunkBodyInto(body, bufs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFillRun decodes a run as the fill writes it (streams.runBody:
// each part a chunk body as AppendChunkBody makes it) of 256 1-event
// appends, and each part's body, as a forward read does: ns/op/256 is an
// event's. With checksums, the run's (formatRunChecked) and each body's
// (formatChecked).
func BenchmarkFillRun(b *testing.B) {
	parts := blockParts(b)
	for i := range parts {
		as, err := DecodeChunkBody(parts[i].Body)
		if err != nil {
			b.Fatal(err)
		}
		parts[i].Body = AppendChunkBody(nil, &Chunk{Appends: as})
	}
	run := AppendRun(nil, parts)
	bufs := new(ChunkBuffers)
	for b.Loop() {
		err := DecodeRun(run, 1, 256, func(p *Part) error {
			_, err := DecodeChunkBodyInto(p.Body, bufs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(run)), "bytes/run")
}
