package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/google/uuid"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/eventlog/eventlog/internal/log"
)

// jsonEvents makes n events with JSON payloads alike in shape, as an
// aggregate's events are.
func jsonEvents(n int) []Event {
	es := make([]Event, n)
	for i := range es {
		es[i] = Event{
			ID:       uuid.UUID{0: 0x01, 14: byte(i >> 8), 15: byte(i)},
			Type:     "ItemAdded",
			Data:     fmt.Appendf(nil, `{"order_id":"o-%d","sku":"grinder-pro","quantity":%d,"unit_price":%d.50,"currency":"EUR"}`, i/7, i%5+1, 10+i%90),
			Metadata: fmt.Appendf(nil, `{"correlation_id":"c-%d","user_id":"u-%d"}`, i, i%13),
		}
	}
	return es
}

func TestCompressedRoundTrip(t *testing.T) {
	for _, n := range []int{1, 3, 100} {
		r := Record{Appends: []Append{{Stream: log.StreamID("order-1"), Bucket: 2, FirstVersion: 5, ClientIDs: true, Events: jsonEvents(n)}}}
		plain := appendPlainRecord(nil, &r, recordLen(&r))
		b := AppendRecord([]byte("prefix"), &r)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("%d events: dst's bytes lost", n)
		}
		b = b[len("prefix"):]
		switch {
		case len(plain) < compressMin && !bytes.Equal(b, checkedOf(plain)):
			t.Fatalf("%d events (%d bytes): not plain and checked below %d bytes", n, len(plain), compressMin)
		case len(plain) >= compressMin && (b[0] != formatS2 || len(b) >= len(plain)/2):
			t.Fatalf("%d events: %d bytes (format %d), plain %d: want compressed to under half", n, len(b), b[0], len(plain))
		}
		got := mustDecodeRecord(t, b)
		if d := diffRecord(&got, &r); d != "" {
			t.Fatalf("%d events: %s", n, d)
		}
		c := Chunks(&r)[0]
		body := AppendChunkBody(nil, &c)
		if n == 100 && body[0] != formatZstd {
			t.Fatalf("100-event chunk not compressed")
		}
		if d := diffChunkAppends(mustDecodeChunkBody(t, body), c.Appends); d != "" {
			t.Fatalf("%d events: chunk: %s", n, d)
		}
	}
}

// Incompressible bytes stay plain rather than grow.
func TestCompressOnlyWhenSmaller(t *testing.T) {
	e := ev(1, nil)
	e.Data = make([]byte, 2048)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range e.Data {
		e.Data[i] = byte(rng.Uint32())
	}
	r := Record{Appends: []Append{{Stream: "s", Bucket: 0, FirstVersion: 1, Events: []Event{e}}}}
	b := AppendRecord(nil, &r)
	if b[0] != formatChecked || len(b) != recordLen(&r)+checksumLen {
		t.Fatalf("encoded %d bytes of format %d, plain is %d", len(b), b[0], recordLen(&r))
	}
	got := mustDecodeRecord(t, b)
	if d := diffRecord(&got, &r); d != "" {
		t.Fatal(d)
	}
}

// Records written with zstd, before log records moved to S2, still
// decode.
func TestZstdRecordsDecode(t *testing.T) {
	r := Record{Appends: []Append{{Stream: "order-1", Bucket: 0, FirstVersion: 1, Events: jsonEvents(50)}}}
	b := appendCompressed(nil, recordLen(&r), codecZstd, func(dst []byte) []byte { return appendPlainRecord(dst, &r, recordLen(&r)) })
	if b[0] != formatZstd {
		t.Fatalf("format %d, want zstd", b[0])
	}
	got := mustDecodeRecord(t, b)
	if d := diffRecord(&got, &r); d != "" {
		t.Fatal(d)
	}
}

func TestCompressedCorrupt(t *testing.T) {
	r := Record{Appends: []Append{{Stream: "order-1", Bucket: 0, FirstVersion: 1, Events: jsonEvents(50)}}}
	for _, c := range []codec{codecZstd, codecS2} {
		good := appendCompressed(nil, recordLen(&r), c, func(dst []byte) []byte { return appendPlainRecord(dst, &r, recordLen(&r)) })
		t.Run(fmt.Sprintf("format %d", good[0]), func(t *testing.T) { testCorrupt(t, good) })
	}
}

func testCorrupt(t *testing.T, good []byte) {
	f := good[0]
	if f != formatZstd && f != formatS2 {
		t.Fatalf("not compressed")
	}
	n, k := binary.Uvarint(good[1:])
	frame := good[1+k:] // for S2, checksum and block
	withLen := func(n uint64, frame []byte) []byte {
		return append(binary.AppendUvarint([]byte{f}, n), frame...)
	}
	// A frame of something that is not a plain encoding.
	junk := []byte{9, 9, 9}
	notPlain := withLen(3, zenc.EncodeAll(junk, nil))
	if f == formatS2 {
		notPlain = withLen(3, append(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(junk, castagnoli)), s2.Encode(nil, junk)...))
	}
	cases := map[string][]byte{
		"length missing":   {f},
		"length zero":      withLen(0, frame),
		"length too large": withLen(maxPlain+1, frame),
		"length short":     withLen(n-1, frame),
		"length long":      withLen(n+1, frame),
		"frame truncated":  withLen(n, frame[:len(frame)/2]),
		"frame flipped":    withLen(n, append(bytes.Clone(frame[:len(frame)-1]), frame[len(frame)-1]^0xff)),
		"not an encoding":  notPlain,
	}
	if f == formatS2 {
		cases["checksum short"] = withLen(n, frame[:3])
		cases["checksum flipped"] = withLen(n, append([]byte{frame[0] ^ 1}, frame[1:]...))
	}
	for name, b := range cases {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: record: err = %v, want ErrCorrupt", name, err)
		}
		if _, err := DecodeChunkBody(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: chunk: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestRecordCodec: a log record is S2 below recordZstdMin of plain bytes,
// zstd from it, and decodes whole either way.
func TestRecordCodec(t *testing.T) {
	for _, n := range []int{5, 40, 400} {
		r := Record{Appends: []Append{{Stream: "order-1", Bucket: 0, FirstVersion: 1, Events: jsonEvents(n)}}}
		want := byte(formatS2)
		if recordLen(&r) >= recordZstdMin {
			want = formatZstd
		}
		b := AppendRecord(nil, &r)
		if b[0] != want {
			t.Fatalf("%d events, %d plain bytes: format %d, want %d", n, recordLen(&r), b[0], want)
		}
		got := mustDecodeRecord(t, b)
		if d := diffRecord(&got, &r); d != "" {
			t.Fatal(d)
		}
	}
	if r := (Record{Appends: []Append{{Stream: "order-1", Events: jsonEvents(400)}}}); recordLen(&r) < recordZstdMin {
		t.Fatalf("400 events are %d plain bytes: the test never reaches zstd", recordLen(&r))
	}
}

// DecodeRecordIn decompresses into the buffer it is given when that has
// room, whatever the buffer held before, and says which buffer the events
// alias: none for a plain record, which they alias itself.
func TestDecodeRecordIn(t *testing.T) {
	for _, n := range []int{1, 5, 400} { // plain, S2, zstd
		r := Record{Appends: []Append{{Stream: "order-1", Bucket: 0, FirstVersion: 1, Events: jsonEvents(n)}}}
		b := AppendRecord(nil, &r)
		stale := bytes.Repeat([]byte{0xee}, 2*recordLen(&r))
		for _, buf := range [][]byte{nil, make([]byte, 0, 3), stale[:7], stale[:0], stale} {
			got, fresh, err := DecodeRecordIn(b, buf)
			if err != nil {
				t.Fatalf("%d events: %v", n, err)
			}
			if d := diffRecord(&got, &r); d != "" {
				t.Fatalf("%d events, a buffer of cap %d: %s", n, cap(buf), d)
			}
			data := got.Appends[0].Events[0].Data
			switch {
			case b[0] != formatS2 && b[0] != formatZstd:
				if fresh != nil || !aliases(data, b) {
					t.Fatalf("%d events (plain): fresh %d bytes, data aliases the input %v", n, len(fresh), aliases(data, b))
				}
			case fresh == nil || !aliases(data, fresh[:cap(fresh)]):
				t.Fatalf("%d events: the data is not in fresh", n)
			case cap(buf) > recordLen(&r) && &fresh[:1][0] != &buf[:1][0]:
				t.Fatalf("%d events: a buffer of cap %d for %d plain bytes not used", n, cap(buf), recordLen(&r))
			}
		}
	}
}

// aliases reports whether b lies inside within's backing array.
func aliases(b, within []byte) bool {
	if len(b) == 0 || cap(within) == 0 {
		return false
	}
	w := within[:cap(within)]
	for i := range w {
		if &w[i] == &b[0] {
			return true
		}
	}
	return false
}

// DecodeRecordInto decodes records one after another into the same
// Buffers: each comes out whole whatever came before, a record no larger
// than the one before reuses its events, and Clear leaves no entry
// pointing into a record's bytes.
func TestDecodeRecordInto(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var (
		bufs Buffers
		want Record
		prev *Event
	)
	for i, tc := range []struct{ appends, streams int }{
		{40, 3}, {2, 2}, {200, 50}, {1, 1}, {200, 50}, {0, 0}, {0, 0}, {0, 0}, // {0, 0}: the one before again
	} {
		if tc.appends > 0 {
			want = randomRecord(rng, tc.appends, tc.streams)
		}
		got, _, err := DecodeRecordInto(AppendRecord(nil, &want), nil, &bufs)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := diffRecord(&got, &want); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
		if i == 7 && &got.Appends[0].Events[0] != prev {
			t.Fatal("a record decoded three times over did not reuse its events")
		}
		prev = &got.Appends[0].Events[0]
	}
	bufs.Clear()
	for i, e := range bufs.events[:cap(bufs.events)] {
		if e.Data != nil || e.Metadata != nil || e.Type != "" {
			t.Fatalf("event entry %d still holds a record's event after Clear", i)
		}
	}
	for i, a := range bufs.appends[:cap(bufs.appends)] {
		if a.Events != nil || a.Stream != "" {
			t.Fatalf("append entry %d still holds a record's append after Clear", i)
		}
	}
	// A small record after a large one: the large one's memory goes at the
	// next Clear (pooled Buffers would each keep the largest record seen).
	for _, n := range []int{1000, 1} {
		want = Record{Appends: []Append{{Stream: "s", FirstVersion: 1, Events: jsonEvents(n)}}}
		if _, _, err := DecodeRecordInto(AppendRecord(nil, &want), nil, &bufs); err != nil {
			t.Fatal(err)
		}
	}
	bufs.Clear()
	if c := cap(bufs.events); c > 2+keptSlack {
		t.Fatalf("kept room for %d events after a record of one", c)
	}
	want = Record{Appends: []Append{{Stream: "big", FirstVersion: 1, Events: jsonEvents(maxKeptEvents + 1)}}}
	got, _, err := DecodeRecordInto(AppendRecord(nil, &want), nil, &bufs)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffRecord(&got, &want); d != "" {
		t.Fatal(d)
	}
	if bufs.events != nil {
		t.Fatalf("kept the events of a record of %d", maxKeptEvents+1)
	}
}

// TestCorruptLengthAllocatesLittle: a compressed encoding whose declared
// plain length is damaged (here: the largest accepted, maxPlain) is
// refused before a buffer of that length is allocated, as the frame
// records another: a corrupt row costs its own size, not 64 MiB.
func TestCorruptLengthAllocatesLittle(t *testing.T) {
	big := Record{Appends: []Append{{Stream: "order-1", FirstVersion: 1, Events: jsonEvents(200)}}}
	small := Record{Appends: []Append{{Stream: "order-1", FirstVersion: 1, Events: jsonEvents(5)}}}
	c := Chunk{Appends: []ChunkAppend{{Events: jsonEvents(20)}}}
	parts := blockParts(t)
	for _, tc := range []struct {
		name   string
		b      []byte
		format byte
		decode func([]byte) error
	}{
		{"S2Record", AppendRecord(nil, &small), formatS2, func(b []byte) error { _, err := DecodeRecord(b); return err }},
		{"ZstdRecord", AppendRecord(nil, &big), formatZstd, func(b []byte) error { _, err := DecodeRecord(b); return err }},
		{"ZstdChunk", AppendChunkBody(nil, &c), formatZstd, func(b []byte) error { _, err := DecodeChunkBody(b); return err }},
		{"ZstdNoContentSize", cat([]byte{formatZstd}, uv(uint64(len(plainOf(t, c))-1)), streamedZstd(t, plainOf(t, c)[1:])), formatZstd,
			func(b []byte) error { _, err := DecodeChunkBody(b); return err }},
		{"Block", AppendBlock(nil, parts), formatBlock, func(b []byte) error {
			return DecodeRun(b, parts[0].FirstVersion, parts[len(parts)-1].LastVersion, func(*Part) error { return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.b[0] != tc.format {
				t.Fatalf("encoded as format %d, want %d", tc.b[0], tc.format)
			}
			if err := tc.decode(tc.b); err != nil && tc.name != "ZstdNoContentSize" {
				t.Fatalf("intact: %v", err)
			}
			_, k := binary.Uvarint(tc.b[1:])
			bad := cat([]byte{tc.format}, uv(maxPlain), tc.b[1+k:])
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := tc.decode(bad)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("length damaged: err = %v, want ErrCorrupt", err)
			}
			// A feed read sizes its buffer by PlainLen.
			if n := PlainLen(bad); n != 0 && tc.format != formatBlock {
				t.Fatalf("PlainLen = %d, want 0", n)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Fatalf("refusing a %d-byte row allocated %d bytes", len(bad), n)
			}
		})
	}
}

// checkedOf is plain encoding plain in its checked form (formatChecked,
// formatRunChecked), spelled out apart from appendChecksum.
func checkedOf(plain []byte) []byte {
	b := bytes.Clone(plain)
	b[0] = map[byte]byte{format: formatChecked, formatRun: formatRunChecked}[plain[0]]
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// plainOf is the plain encoding of c's body.
func plainOf(tb testing.TB, c Chunk) []byte {
	b, err := plainEncoding(AppendChunkBody(nil, &c))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// streamedZstd is b as a zstd stream encoder writes it: a frame that does
// not record its content size.
func streamedZstd(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	// Flushed part way: the header goes out before the length is known.
	if _, err := w.Write(b[:len(b)/2]); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(b[len(b)/2:]); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		tb.Fatalf("streamed frame: content size recorded %v, %v", h.HasFCS, err)
	}
	return buf.Bytes()
}
