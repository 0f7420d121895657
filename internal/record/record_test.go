package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoder")

// ---- helpers ----

func mustDecodeRecord(tb testing.TB, b []byte) Record {
	tb.Helper()
	r, err := DecodeRecord(b)
	if err != nil {
		tb.Fatalf("DecodeRecord: %v", err)
	}
	return r
}

func mustDecodeChunkBody(tb testing.TB, b []byte) []ChunkAppend {
	tb.Helper()
	as, err := DecodeChunkBody(b)
	if err != nil {
		tb.Fatalf("DecodeChunkBody: %v", err)
	}
	return as
}

// diffEvents says how got differs from want, "" if it does not. Data is
// compared by content only (the format does not tell nil from empty data);
// Metadata also by presence, which the format keeps.
func diffEvents(got, want []Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		switch {
		case g.ID != w.ID:
			return fmt.Sprintf("event %d: id %s, want %s", i, g.ID, w.ID)
		case g.Type != w.Type:
			return fmt.Sprintf("event %d: type %q, want %q", i, g.Type, w.Type)
		case !bytes.Equal(g.Data, w.Data):
			return fmt.Sprintf("event %d: %d bytes of data differ from the %d wanted", i, len(g.Data), len(w.Data))
		case (g.Metadata == nil) != (w.Metadata == nil):
			return fmt.Sprintf("event %d: metadata nil = %v, want nil = %v", i, g.Metadata == nil, w.Metadata == nil)
		case !bytes.Equal(g.Metadata, w.Metadata):
			return fmt.Sprintf("event %d: %d bytes of metadata differ from the %d wanted", i, len(g.Metadata), len(w.Metadata))
		}
	}
	return ""
}

func diffRecord(got, want *Record) string {
	if len(got.Appends) != len(want.Appends) {
		return fmt.Sprintf("%d appends, want %d", len(got.Appends), len(want.Appends))
	}
	for i := range want.Appends {
		g, w := &got.Appends[i], &want.Appends[i]
		if g.Stream != w.Stream || g.Bucket != w.Bucket || g.FirstVersion != w.FirstVersion ||
			g.OpensBucket != w.OpensBucket || g.ClientIDs != w.ClientIDs {
			return fmt.Sprintf("append %d: %s bucket %d v%d opens %v client %v, want %s bucket %d v%d opens %v client %v", i,
				g.Stream, g.Bucket, g.FirstVersion, g.OpensBucket, g.ClientIDs,
				w.Stream, w.Bucket, w.FirstVersion, w.OpensBucket, w.ClientIDs)
		}
		if d := diffEvents(g.Events, w.Events); d != "" {
			return fmt.Sprintf("append %d: %s", i, d)
		}
	}
	return ""
}

func diffChunkAppends(got, want []ChunkAppend) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d appends, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ClientIDs != want[i].ClientIDs {
			return fmt.Sprintf("append %d: ClientIDs %v, want %v", i, got[i].ClientIDs, want[i].ClientIDs)
		}
		if d := diffEvents(got[i].Events, want[i].Events); d != "" {
			return fmt.Sprintf("append %d: %s", i, d)
		}
	}
	return ""
}

func diffChunks(got, want []Chunk) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d chunks, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		if g.Stream != w.Stream || g.Bucket != w.Bucket || g.FirstVersion != w.FirstVersion || g.OpensBucket != w.OpensBucket {
			return fmt.Sprintf("chunk %d: %s bucket %d v%d opens %v, want %s bucket %d v%d opens %v", i,
				g.Stream, g.Bucket, g.FirstVersion, g.OpensBucket, w.Stream, w.Bucket, w.FirstVersion, w.OpensBucket)
		}
		if d := diffChunkAppends(g.Appends, w.Appends); d != "" {
			return fmt.Sprintf("chunk %d: %s", i, d)
		}
	}
	return ""
}

// ev makes a small event numbered n, with meta as its metadata (nil: none).
func ev(n int, meta []byte) Event {
	return Event{
		ID:       uuid.UUID{0: 0xee, 14: byte(n >> 8), 15: byte(n)},
		Type:     fmt.Sprintf("Happened%d", n),
		Data:     fmt.Appendf(nil, `{"n":%d}`, n),
		Metadata: meta,
	}
}

// evs makes count events numbered from n on, without metadata.
func evs(n, count int) []Event {
	out := make([]Event, count)
	for i := range out {
		out[i] = ev(n+i, nil)
	}
	return out
}

// randomRecord builds a valid record as the sequencer would: each stream's
// appends at consecutive versions, sometimes moving to the next bucket
// (OpensBucket), with no, empty or some metadata.
func randomRecord(rng *rand.Rand, appends, streams int) Record {
	type head struct{ bucket, next int64 }
	heads := make([]head, streams)
	for i := range heads {
		heads[i] = head{bucket: rng.Int64N(1 << rng.IntN(40)), next: 1 + rng.Int64N(1<<rng.IntN(40))}
	}
	r := Record{Appends: make([]Append, 0, appends)}
	for range appends {
		s := rng.IntN(streams)
		h := &heads[s]
		a := Append{Stream: log.StreamID(fmt.Sprintf("stream-%d", s)), ClientIDs: rng.IntN(2) == 0}
		if rng.IntN(4) == 0 {
			h.bucket++
			a.OpensBucket = true
		}
		a.Bucket, a.FirstVersion = h.bucket, h.next
		a.Events = make([]Event, 1+rng.IntN(4))
		for i := range a.Events {
			a.Events[i] = randomEvent(rng)
		}
		h.next += int64(len(a.Events))
		r.Appends = append(r.Appends, a)
	}
	return r
}

func randomEvent(rng *rand.Rand) Event {
	var e Event
	for i := range e.ID {
		e.ID[i] = byte(rng.Uint32())
	}
	e.Type = strings.Repeat("T", rng.IntN(20))
	e.Data = randomBytes(rng, rng.IntN(300))
	switch rng.IntN(3) {
	case 0: // none
	case 1:
		e.Metadata = []byte{}
	default:
		e.Metadata = randomBytes(rng, 1+rng.IntN(200))
	}
	return e
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// ---- round trips ----

func TestRecordRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tc := range []struct {
		name string
		r    Record
	}{
		{"Empty", Record{}},
		{"OneEvent", Record{Appends: []Append{{Stream: "user-1", FirstVersion: 1, Events: evs(1, 1)}}}},
		{"Flags", Record{Appends: []Append{
			{Stream: "a", Bucket: 0, FirstVersion: 1, Events: evs(1, 1)},
			{Stream: "b", Bucket: 1, FirstVersion: 1, OpensBucket: true, Events: evs(2, 1)},
			{Stream: "c", Bucket: 2, FirstVersion: 1, ClientIDs: true, Events: evs(3, 1)},
			{Stream: "d", Bucket: 3, FirstVersion: 1, OpensBucket: true, ClientIDs: true, Events: evs(4, 1)},
		}}},
		// Present-but-empty metadata is not "none": the decoder must give
		// back a non-nil empty slice, and nil for none.
		{"Metadata", Record{Appends: []Append{{Stream: "m", FirstVersion: 7, Events: []Event{
			ev(1, nil), ev(2, []byte{}), ev(3, []byte(`{"trace":"x"}`)), ev(4, nil), ev(5, []byte{}),
		}}}}},
		{"EmptyTypeAndData", Record{Appends: []Append{{Stream: "e", FirstVersion: 1, Events: []Event{{}, {Metadata: []byte{}}}}}}},
		// Numbers that need several varint bytes.
		{"LargeNumbers", Record{Appends: []Append{{Stream: log.StreamID(strings.Repeat("s", 200)), Bucket: 1 << 40, FirstVersion: math.MaxInt32 + 5, Events: evs(1, 2)}}}},
		{"BigData", Record{Appends: []Append{{Stream: "big", FirstVersion: 1, Events: []Event{
			{ID: uuid.UUID{1}, Type: "Big", Data: big, Metadata: big[:1<<18]},
			ev(2, nil),
		}}}}},
		// 19 bytes each: the smallest events, at the decoder's bound on
		// what a count may claim for the bytes left.
		{"ManyMinimalEvents", Record{Appends: []Append{{Stream: "min", FirstVersion: 1, Events: make([]Event, 10000)}}}},
		{"ManyEvents", Record{Appends: []Append{{Stream: "many", Bucket: 9, FirstVersion: 1000, Events: evs(1, 2000)}}}},
		{"ManyAppends", randomRecord(rand.New(rand.NewPCG(1, 2)), 3000, 50)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b := AppendRecord(bytes.Clone(prefix), &tc.r)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatal("AppendRecord lost dst")
			}
			b = b[len(prefix):]
			got := mustDecodeRecord(t, b)
			if d := diffRecord(&got, &tc.r); d != "" {
				t.Fatal(d)
			}
			if again := AppendRecord(nil, &got); !bytes.Equal(again, b) {
				t.Fatal("decoded record re-encodes to other bytes")
			}
			if got, want := got.Events(), tc.r.Events(); got != want {
				t.Fatalf("Events() = %d after decoding, want %d", got, want)
			}
		})
	}
}

func TestRecordRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		r := randomRecord(rng, 1+rng.IntN(30), 1+rng.IntN(6))
		b := AppendRecord(nil, &r)
		got := mustDecodeRecord(t, b)
		if d := diffRecord(&got, &r); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
		chunks := Chunks(&r)
		checkChunks(t, &r, chunks)
		for j := range chunks {
			body := AppendChunkBody(nil, &chunks[j])
			if d := diffChunkAppends(mustDecodeChunkBody(t, body), chunks[j].Appends); d != "" {
				t.Fatalf("record %d chunk %d: %s", i, j, d)
			}
		}
	}
}

func TestChunkBodyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Chunk
	}{
		{"NoAppends", Chunk{}},
		{"OneAppend", Chunk{Appends: []ChunkAppend{{Events: evs(1, 1)}}}},
		{"Mixed", Chunk{Appends: []ChunkAppend{
			{ClientIDs: true, Events: []Event{ev(1, nil), ev(2, []byte{})}},
			{ClientIDs: false, Events: []Event{ev(3, []byte(`{"a":1}`))}},
			{ClientIDs: true, Events: evs(4, 300)},
		}}},
		{"MinimalEvents", Chunk{Appends: []ChunkAppend{{Events: make([]Event, 5000)}, {Events: make([]Event, 1)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The body leaves out the row key: these must not change it.
			keyed := tc.c
			keyed.Stream, keyed.Bucket, keyed.FirstVersion, keyed.OpensBucket = "s-1", 4, 99, true
			b := AppendChunkBody([]byte{0xaa}, &tc.c)[1:]
			if !bytes.Equal(AppendChunkBody(nil, &keyed), b) {
				t.Fatal("the body depends on the row key")
			}
			if d := diffChunkAppends(mustDecodeChunkBody(t, b), tc.c.Appends); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// Decoded slices alias the input (no copy of big data), but with their
// capacity cut, so appending to one cannot overwrite what follows.
func TestDecodeAliasesInput(t *testing.T) {
	r := Record{Appends: []Append{{Stream: "s", FirstVersion: 1, Events: []Event{
		{Data: []byte("data"), Metadata: []byte("meta")}, {Data: []byte("next")},
	}}}}
	b := AppendRecord(nil, &r)
	orig := bytes.Clone(b)
	got := mustDecodeRecord(t, b)
	e := &got.Appends[0].Events[0]
	_ = append(e.Data, "XXXXXXXX"...)
	_ = append(e.Metadata, "XXXXXXXX"...)
	if !bytes.Equal(b, orig) {
		t.Fatal("appending to decoded data overwrote the input")
	}
	if &e.Data[0] != &b[bytes.Index(b, []byte("data"))] {
		t.Fatal("decoded data is a copy, want it to alias the input")
	}
}

func TestCounts(t *testing.T) {
	r := Record{Appends: []Append{
		{Stream: "a", FirstVersion: 5, Events: evs(1, 3)},
		{Stream: "b", FirstVersion: 1, Events: evs(4, 1)},
		{Stream: "a", FirstVersion: 8, Events: evs(5, 2)},
	}}
	if got, want := r.Events(), 6; got != want {
		t.Errorf("Record.Events() = %d, want %d", got, want)
	}
	if got := (&Record{}).Events(); got != 0 {
		t.Errorf("empty Record.Events() = %d, want 0", got)
	}
	for i, want := range []int64{7, 1, 9} {
		if got := r.Appends[i].LastVersion(); got != want {
			t.Errorf("append %d: LastVersion() = %d, want %d", i, got, want)
		}
	}
	c := Chunk{FirstVersion: 10, Appends: []ChunkAppend{{Events: evs(1, 2)}, {Events: evs(3, 3)}}}
	if got, want := c.LastVersion(), int64(14); got != want {
		t.Errorf("Chunk.LastVersion() = %d, want %d", got, want)
	}
	if got, want := (&Chunk{FirstVersion: 10}).LastVersion(), int64(9); got != want {
		t.Errorf("empty Chunk.LastVersion() = %d, want %d", got, want)
	}
}

// ---- Chunks ----

func TestChunks(t *testing.T) {
	e := evs(1, 10) // shared events: Chunks must hand them on unchanged
	for _, tc := range []struct {
		name string
		r    []Append
		want []Chunk
	}{
		{"Empty", nil, nil},
		{"OneAppend",
			[]Append{{Stream: "a", Bucket: 2, FirstVersion: 5, ClientIDs: true, Events: e[:2]}},
			[]Chunk{{Stream: "a", Bucket: 2, FirstVersion: 5, Appends: []ChunkAppend{{ClientIDs: true, Events: e[:2]}}}}},
		{"ConsecutiveShare",
			[]Append{
				{Stream: "a", FirstVersion: 1, ClientIDs: true, Events: e[0:2]},
				{Stream: "a", FirstVersion: 3, Events: e[2:3]},
				{Stream: "a", FirstVersion: 4, ClientIDs: true, Events: e[3:5]},
			},
			[]Chunk{{Stream: "a", FirstVersion: 1, Appends: []ChunkAppend{
				{ClientIDs: true, Events: e[0:2]}, {Events: e[2:3]}, {ClientIDs: true, Events: e[3:5]},
			}}}},
		{"OpensBucketFirst",
			[]Append{
				{Stream: "a", Bucket: 3, FirstVersion: 8, OpensBucket: true, Events: e[0:1]},
				{Stream: "a", Bucket: 3, FirstVersion: 9, Events: e[1:2]},
			},
			[]Chunk{{Stream: "a", Bucket: 3, FirstVersion: 8, OpensBucket: true, Appends: []ChunkAppend{{Events: e[0:1]}, {Events: e[1:2]}}}}},
		// The bucket index must see the new bucket's first version: that
		// append cannot hide inside the previous bucket's chunk.
		{"OpensBucketSplits",
			[]Append{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Events: e[0:2]},
				{Stream: "a", Bucket: 1, FirstVersion: 3, OpensBucket: true, Events: e[2:3]},
				{Stream: "a", Bucket: 1, FirstVersion: 4, Events: e[3:4]},
			},
			[]Chunk{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Appends: []ChunkAppend{{Events: e[0:2]}}},
				{Stream: "a", Bucket: 1, FirstVersion: 3, OpensBucket: true, Appends: []ChunkAppend{{Events: e[2:3]}, {Events: e[3:4]}}},
			}},
		// The sequencer never opens a bucket twice, but a stored record is
		// not to be trusted: an append that opens its bucket still starts
		// a chunk, or the bucket would never be indexed.
		{"OpensSameBucketSplits",
			[]Append{
				{Stream: "a", Bucket: 1, FirstVersion: 1, Events: e[0:1]},
				{Stream: "a", Bucket: 1, FirstVersion: 2, OpensBucket: true, Events: e[1:2]},
			},
			[]Chunk{
				{Stream: "a", Bucket: 1, FirstVersion: 1, Appends: []ChunkAppend{{Events: e[0:1]}}},
				{Stream: "a", Bucket: 1, FirstVersion: 2, OpensBucket: true, Appends: []ChunkAppend{{Events: e[1:2]}}},
			}},
		{"OtherBucketSplits",
			[]Append{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Events: e[0:1]},
				{Stream: "a", Bucket: 1, FirstVersion: 2, Events: e[1:2]},
			},
			[]Chunk{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Appends: []ChunkAppend{{Events: e[0:1]}}},
				{Stream: "a", Bucket: 1, FirstVersion: 2, Appends: []ChunkAppend{{Events: e[1:2]}}},
			}},
		// A chunk's events must be contiguous: a gap (which the sequencer
		// never makes) starts a new chunk rather than a wrong one.
		{"VersionGapSplits",
			[]Append{
				{Stream: "a", FirstVersion: 1, Events: e[0:1]},
				{Stream: "a", FirstVersion: 5, Events: e[1:2]},
			},
			[]Chunk{
				{Stream: "a", FirstVersion: 1, Appends: []ChunkAppend{{Events: e[0:1]}}},
				{Stream: "a", FirstVersion: 5, Appends: []ChunkAppend{{Events: e[1:2]}}},
			}},
		{"Interleaved",
			[]Append{
				{Stream: "b", FirstVersion: 10, Events: e[0:1]},
				{Stream: "a", FirstVersion: 1, Events: e[1:2]},
				{Stream: "b", FirstVersion: 11, ClientIDs: true, Events: e[2:4]},
				{Stream: "c", FirstVersion: 1, Events: e[4:5]},
				{Stream: "a", FirstVersion: 2, Events: e[5:6]},
			},
			[]Chunk{
				{Stream: "b", FirstVersion: 10, Appends: []ChunkAppend{{Events: e[0:1]}, {ClientIDs: true, Events: e[2:4]}}},
				{Stream: "a", FirstVersion: 1, Appends: []ChunkAppend{{Events: e[1:2]}, {Events: e[5:6]}}},
				{Stream: "c", FirstVersion: 1, Appends: []ChunkAppend{{Events: e[4:5]}}},
			}},
		// Chunks come out in the record order of their first append, also
		// when one stream has two.
		{"InterleavedAcrossBuckets",
			[]Append{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Events: e[0:1]},
				{Stream: "b", Bucket: 5, FirstVersion: 1, Events: e[1:2]},
				{Stream: "a", Bucket: 1, FirstVersion: 2, OpensBucket: true, Events: e[2:3]},
				{Stream: "b", Bucket: 5, FirstVersion: 2, Events: e[3:4]},
				{Stream: "a", Bucket: 1, FirstVersion: 3, Events: e[4:5]},
			},
			[]Chunk{
				{Stream: "a", Bucket: 0, FirstVersion: 1, Appends: []ChunkAppend{{Events: e[0:1]}}},
				{Stream: "b", Bucket: 5, FirstVersion: 1, Appends: []ChunkAppend{{Events: e[1:2]}, {Events: e[3:4]}}},
				{Stream: "a", Bucket: 1, FirstVersion: 2, OpensBucket: true, Appends: []ChunkAppend{{Events: e[2:3]}, {Events: e[4:5]}}},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Appends: tc.r}
			got := Chunks(&r)
			if d := diffChunks(got, tc.want); d != "" {
				t.Fatal(d)
			}
			checkChunks(t, &r, got)
		})
	}
}

// checkChunks checks chunks against r by properties that hold for any
// record, also the fuzzer's: every append lands in exactly one chunk, a
// stream's appends in record order; chunks come in the record order of
// their first append; a chunk holds one bucket at contiguous versions,
// opening it only with its first append; and it is maximal: the stream's
// next append could not have joined it.
func checkChunks(tb testing.TB, r *Record, chunks []Chunk) {
	tb.Helper()
	pos := map[log.StreamID][]int{} // a stream's appends, by index in r
	for i := range r.Appends {
		pos[r.Appends[i].Stream] = append(pos[r.Appends[i].Stream], i)
	}
	next := map[log.StreamID]int{} // index into pos of the stream's first append not yet seen in a chunk
	prev := -1
	for ci := range chunks {
		c := &chunks[ci]
		ps, k := pos[c.Stream], next[c.Stream]
		if len(c.Appends) == 0 || k+len(c.Appends) > len(ps) {
			tb.Fatalf("chunk %d of %s holds %d appends, %d of the stream's %d left", ci, c.Stream, len(c.Appends), len(ps)-k, len(ps))
		}
		first := &r.Appends[ps[k]]
		if ps[k] <= prev {
			tb.Fatalf("chunk %d starts at append %d, after chunk %d started at append %d", ci, ps[k], ci-1, prev)
		}
		prev = ps[k]
		if c.Bucket != first.Bucket || c.FirstVersion != first.FirstVersion || c.OpensBucket != first.OpensBucket {
			tb.Fatalf("chunk %d: bucket %d v%d opens %v, its first append has bucket %d v%d opens %v",
				ci, c.Bucket, c.FirstVersion, c.OpensBucket, first.Bucket, first.FirstVersion, first.OpensBucket)
		}
		v := c.FirstVersion
		for j := range c.Appends {
			a := &r.Appends[ps[k+j]]
			if j > 0 && (a.Bucket != c.Bucket || a.OpensBucket || a.FirstVersion != v) {
				tb.Fatalf("chunk %d (bucket %d, next v%d) took append %d (bucket %d v%d opens %v)",
					ci, c.Bucket, v, ps[k+j], a.Bucket, a.FirstVersion, a.OpensBucket)
			}
			if c.Appends[j].ClientIDs != a.ClientIDs {
				tb.Fatalf("chunk %d append %d: ClientIDs %v, want %v", ci, j, c.Appends[j].ClientIDs, a.ClientIDs)
			}
			if d := diffEvents(c.Appends[j].Events, a.Events); d != "" {
				tb.Fatalf("chunk %d append %d: %s", ci, j, d)
			}
			v += int64(len(a.Events))
		}
		if got := c.LastVersion(); got != v-1 {
			tb.Fatalf("chunk %d: LastVersion %d, want %d", ci, got, v-1)
		}
		next[c.Stream] = k + len(c.Appends)
		if k := next[c.Stream]; k < len(ps) {
			if a := &r.Appends[ps[k]]; a.Bucket == c.Bucket && !a.OpensBucket && a.FirstVersion == v {
				tb.Fatalf("append %d could have joined chunk %d but starts its own", ps[k], ci)
			}
		}
	}
	for s, ps := range pos {
		if next[s] != len(ps) {
			tb.Fatalf("%d of %s's %d appends are in no chunk", len(ps)-next[s], s, len(ps))
		}
	}
}

// ---- golden files ----

// goldenRecord is the record behind testdata/record.golden; its first
// chunk is behind testdata/chunk.golden.
func goldenRecord() Record {
	id := func(s string) uuid.UUID { return uuid.MustParse(s) }
	return Record{Appends: []Append{
		{Stream: "order-1", Bucket: 0, FirstVersion: 1, OpensBucket: true, ClientIDs: true, Events: []Event{
			{ID: id("0190f1d2-0000-7000-8000-000000000001"), Type: "OrderPlaced", Data: []byte(`{"sku":"A-1","qty":2}`), Metadata: []byte(`{"user":"u1"}`)},
			{ID: id("0190f1d2-0000-7000-8000-000000000002"), Type: "OrderPaid", Data: []byte(`{"amount":1250}`)},
		}},
		{Stream: "user-7", Bucket: 3, FirstVersion: 300, Events: []Event{
			{ID: id("0190f1d2-0000-7000-8000-000000000003"), Type: "UserSeen", Data: []byte(`null`), Metadata: []byte{}},
		}},
		{Stream: "order-1", Bucket: 0, FirstVersion: 3, Events: []Event{
			{ID: id("0190f1d2-0000-7000-8000-000000000004"), Type: "OrderShipped", Data: []byte(`{}`)},
		}},
	}}
}

func goldenPath(name string) string { return filepath.Join("testdata", name+".golden") }

// writeGolden stores b in hex, 32 bytes a line, so a format change shows
// in review as a readable diff.
func writeGolden(tb testing.TB, name string, b []byte) {
	tb.Helper()
	var s strings.Builder
	s.WriteString("# Written by go test ./internal/record -run TestGolden -update. Do not edit.\n")
	for len(b) > 0 {
		n := min(len(b), 32)
		s.WriteString(hex.EncodeToString(b[:n]) + "\n")
		b = b[n:]
	}
	if err := os.WriteFile(goldenPath(name), []byte(s.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func readGolden(tb testing.TB, name string) []byte {
	tb.Helper()
	text, err := os.ReadFile(goldenPath(name))
	if err != nil {
		tb.Fatal(err)
	}
	var h strings.Builder
	for line := range strings.Lines(string(text)) {
		if !strings.HasPrefix(line, "#") {
			h.WriteString(strings.TrimSpace(line))
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		tb.Fatalf("%s: %v", goldenPath(name), err)
	}
	return b
}

// Rows are written once and read forever, and every materialiser of a
// record must write the same chunk bytes, whatever version it runs: so
// both decoding the golden bytes and encoding to them are the contract. A
// failure means the format changed; add a new format byte instead of
// running -update (which is only for adding golden cases). The fixtures
// of a format no longer written (record, chunk: plain without a checksum,
// before formatChecked) are only decoded, and -update leaves them.
func TestGolden(t *testing.T) {
	r := goldenRecord()
	chunks := Chunks(&r)
	if len(chunks) != 2 || len(chunks[0].Appends) != 2 {
		t.Fatalf("golden record makes %d chunks, want its first with 2 appends", len(chunks))
	}
	checkRecord := func(t *testing.T, b []byte) string {
		got := mustDecodeRecord(t, b)
		return diffRecord(&got, &r)
	}
	checkChunk := func(t *testing.T, b []byte) string {
		return diffChunkAppends(mustDecodeChunkBody(t, b), chunks[0].Appends)
	}
	parts := goldenRun(chunks)
	for _, tc := range []struct {
		name   string
		format byte
		enc    []byte // nil: a format only decoded
		check  func(t *testing.T, b []byte) string
	}{
		{"record", format, nil, checkRecord},
		{"chunk", format, nil, checkChunk},
		{"record-checked", formatChecked, AppendRecord(nil, &r), checkRecord},
		{"chunk-checked", formatChecked, AppendChunkBody(nil, &chunks[0]), checkChunk},
		{"run-checked", formatRunChecked, AppendRun(nil, parts), func(t *testing.T, b []byte) string {
			var got []Part
			if err := DecodeRun(b, 1, 4, func(p *Part) error { got = append(got, *p); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(parts) {
				return fmt.Sprintf("%d parts, want %d", len(got), len(parts))
			}
			for i := range got {
				if g, w := got[i], parts[i]; g.Seq != w.Seq || g.Time != w.Time || g.FirstVersion != w.FirstVersion ||
					g.LastVersion != w.LastVersion || !bytes.Equal(g.Body, inRun(w.Body)) {
					return fmt.Sprintf("part %d: %+v, want %+v", i, g, w)
				}
			}
			return checkChunk(t, got[0].Body)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if *update && tc.enc != nil {
				writeGolden(t, tc.name, tc.enc)
			}
			golden := readGolden(t, tc.name)
			if golden[0] != tc.format {
				t.Fatalf("%s: format %d, want %d", goldenPath(tc.name), golden[0], tc.format)
			}
			if d := tc.check(t, golden); d != "" {
				t.Fatalf("%s decodes differently: %s", goldenPath(tc.name), d)
			}
			if tc.enc != nil && !bytes.Equal(tc.enc, golden) {
				t.Fatalf("encoding changed:\n got %x\nwant %x (%s)", tc.enc, golden, goldenPath(tc.name))
			}
		})
	}
}

// goldenRun is the run behind testdata/run-checked.golden: the golden
// record's chunks' bodies as two parts of one row of versions 1..4.
func goldenRun(chunks []Chunk) []Part {
	return []Part{
		{Seq: 7, Time: 1_765_000_000_000, FirstVersion: 1, LastVersion: 3, Body: AppendChunkBody(nil, &chunks[0])},
		{Seq: 8, Time: 1_765_000_000_005, FirstVersion: 4, LastVersion: 4, Body: AppendChunkBody(nil, &chunks[1])},
	}
}

// ---- corruption ----

// validEncodings are record and chunk-body encodings to corrupt.
func validEncodings() (records, bodies [][]byte) {
	rs := []Record{goldenRecord(), randomRecord(rand.New(rand.NewPCG(5, 6)), 8, 3), {Appends: []Append{{Stream: "m", FirstVersion: 1, Events: make([]Event, 3)}}}}
	for i := range rs {
		records = append(records, AppendRecord(nil, &rs[i]))
		for _, c := range Chunks(&rs[i]) {
			bodies = append(bodies, AppendChunkBody(nil, &c))
		}
	}
	return records, bodies
}

// decoders run both decoders alike; each returns whether it accepted b,
// and if so b's re-encoding.
var decoders = []struct {
	name   string
	decode func([]byte) (reencoded []byte, err error)
}{
	{"Record", func(b []byte) ([]byte, error) {
		r, err := DecodeRecord(b)
		if err != nil {
			return nil, err
		}
		return AppendRecord(nil, &r), nil
	}},
	{"ChunkBody", func(b []byte) ([]byte, error) {
		as, err := DecodeChunkBody(b)
		if err != nil {
			return nil, err
		}
		return AppendChunkBody(nil, &Chunk{Appends: as}), nil
	}},
}

func TestDecodeTruncated(t *testing.T) {
	records, bodies := validEncodings()
	for i, encs := range [][][]byte{records, bodies} {
		dec := decoders[i]
		t.Run(dec.name, func(t *testing.T) {
			for _, b := range encs {
				for n := range len(b) {
					// Cap at n too: reading past it would panic, not pass.
					if _, err := dec.decode(b[:n:n]); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("%d-byte encoding cut to %d: err = %v, want ErrCorrupt", len(b), n, err)
					}
				}
			}
		})
	}
}

func TestDecodeTrailingBytes(t *testing.T) {
	records, bodies := validEncodings()
	for i, b := range [][]byte{records[0], bodies[0]} {
		dec := decoders[i]
		for _, tc := range []struct {
			name  string
			extra []byte
		}{{"Zero", []byte{0}}, {"FormatByte", []byte{format}}, {"Twice", b}} {
			t.Run(dec.name+"/"+tc.name, func(t *testing.T) {
				if _, err := dec.decode(append(bytes.Clone(b), tc.extra...)); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
			})
		}
	}
}

func TestDecodeUnknownFormat(t *testing.T) {
	records, bodies := validEncodings()
	for i, b := range [][]byte{records[0], bodies[0]} {
		dec := decoders[i]
		for _, f := range []byte{0, format + 1, 0xff} {
			t.Run(fmt.Sprintf("%s/%d", dec.name, f), func(t *testing.T) {
				mut := bytes.Clone(b)
				mut[0] = f
				if _, err := dec.decode(mut); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
			})
		}
		t.Run(dec.name+"/Nil", func(t *testing.T) {
			if _, err := dec.decode(nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// Every change of one byte to any other value is ErrCorrupt or decodes to
// something that re-encodes to exactly the changed bytes: the encoding is
// canonical, so no two byte strings are the same row.
func TestDecodeSingleByteChanges(t *testing.T) {
	records, bodies := validEncodings()
	for k, b := range [][]byte{records[0], bodies[0]} {
		dec := decoders[k]
		t.Run(dec.name, func(t *testing.T) {
			mut := make([]byte, len(b))
			accepted := 0
			for i := range b {
				for d := 1; d < 256; d++ {
					copy(mut, b)
					mut[i] ^= byte(d)
					again, err := dec.decode(mut)
					switch {
					case err == nil && !bytes.Equal(again, mut):
						t.Fatalf("byte %d ^ %#x: decodes, but re-encodes to other bytes\n got %x\nwant %x", i, d, again, mut)
					case err != nil && !errors.Is(err, ErrCorrupt):
						t.Fatalf("byte %d ^ %#x: err = %v, want ErrCorrupt", i, d, err)
					case err == nil:
						accepted++
					}
				}
			}
			t.Logf("%d-byte encoding: %d of %d changes still decode", len(b), accepted, len(b)*255)
		})
	}
}

// Hand-made encodings, each valid but for one fault.

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// minEvent is the smallest event: nil id, empty type and data, no metadata.
var minEvent = make([]byte, 16+3)

// rawRecord encodes one append of stream with one events block.
func rawRecord(stream, bucket, first []byte, flags byte, events []byte) []byte {
	return cat([]byte{format}, uv(1), uv(uint64(len(stream))), stream, bucket, first, []byte{flags}, events)
}

func TestDecodeRecordInvalid(t *testing.T) {
	one := cat(uv(1), minEvent)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"OK", rawRecord([]byte("s"), uv(0), uv(1), flagOpensBucket|flagClientIDs, one)},
		{"EmptyStream", rawRecord(nil, uv(0), uv(1), 0, one)},
		{"FirstVersionZero", rawRecord([]byte("s"), uv(0), uv(0), 0, one)},
		{"NoEvents", rawRecord([]byte("s"), uv(0), uv(1), 0, uv(0))},
		{"NegativeBucket", rawRecord([]byte("s"), binary.AppendUvarint(nil, math.MaxUint64), uv(1), 0, one)},
		{"BucketOutOfRange", rawRecord([]byte("s"), uv(1<<62+1), uv(1), 0, one)},
		{"FirstVersionOutOfRange", rawRecord([]byte("s"), uv(0), uv(1<<63), 0, one)},
		{"UnknownFlag", rawRecord([]byte("s"), uv(0), uv(1), 1<<2, one)},
		{"HighFlag", rawRecord([]byte("s"), uv(0), uv(1), 0x80, one)},
		{"VarintOverflow", rawRecord([]byte("s"), bytes.Repeat([]byte{0xff}, 11), uv(1), 0, one)},
		// Non-minimal varints decode to the right number but are a second
		// encoding of the same record.
		{"NonMinimalAppendCount", cat([]byte{format, 0x81, 0x00, 1, 's', 0, 1, 0}, one)},
		{"NonMinimalBucket", rawRecord([]byte("s"), []byte{0x80, 0x00}, uv(1), 0, one)},
		{"NonMinimalFirstVersion", rawRecord([]byte("s"), uv(0), []byte{0x81, 0x80, 0x00}, 0, one)},
		{"NonMinimalEventCount", rawRecord([]byte("s"), uv(0), uv(1), 0, cat([]byte{0x81, 0x00}, minEvent))},
		{"NonMinimalMetadataLength", rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(1), make([]byte, 18), []byte{0x81, 0x00}))},
		{"TooManyEvents", rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(MaxEvents+1), minEvent))},
		{"TooManyAppends", cat([]byte{format}, uv(MaxEvents+1))},
		{"TypeLongerThanInput", rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(1), make([]byte, 16), uv(1<<40), []byte{0, 0}))},
		{"DataLongerThanInput", rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(1), make([]byte, 17), uv(1<<62), []byte{0}))},
		{"MetadataLongerThanInput", rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(1), make([]byte, 18), uv(math.MaxUint64)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecord(tc.b)
			if tc.name == "OK" {
				if err != nil {
					t.Fatalf("the unbroken encoding fails: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeChunkBodyInvalid(t *testing.T) {
	body := func(flags byte, events []byte) []byte { return cat([]byte{format}, uv(1), []byte{flags}, events) }
	one := cat(uv(1), minEvent)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"OK", body(flagClientIDs, one)},
		{"NoEvents", body(0, uv(0))},
		// OpensBucket belongs to the row key, not to a body's append.
		{"OpensBucketFlag", body(flagOpensBucket, one)},
		{"UnknownFlag", body(1<<2, one)},
		{"NonMinimalAppendCount", cat([]byte{format, 0x81, 0x00, 0}, one)},
		{"NonMinimalEventCount", body(0, cat([]byte{0x81, 0x00}, minEvent))},
		{"TooManyAppends", cat([]byte{format}, uv(MaxEvents+1))},
		{"TooManyEvents", body(0, cat(uv(MaxEvents+1), minEvent))},
		{"DataLongerThanInput", body(0, cat(uv(1), make([]byte, 17), uv(1<<62), []byte{0}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeChunkBody(tc.b)
			if tc.name == "OK" {
				if err != nil {
					t.Fatalf("the unbroken encoding fails: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// allocated returns the heap bytes one call of f allocates, averaged.
func allocated(f func()) uint64 {
	const runs = 100
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// Short inputs declaring huge counts or lengths fail without allocating
// for what they claim: a corrupt row costs what its bytes cost.
func TestDecodeLyingInputAllocates(t *testing.T) {
	// Room for the error and one of each decoded struct; far below any of
	// the claims (a million events of 80 bytes, a thousand appends).
	const maxAlloc = 1 << 10
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		b      []byte
	}{
		{"RecordAppends", decodeRecordErr, cat([]byte{format}, uv(MaxEvents), bytes.Repeat([]byte{1}, 16))},
		{"RecordEvents", decodeRecordErr, rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(MaxEvents), make([]byte, 12)))},
		{"RecordData", decodeRecordErr, rawRecord([]byte("s"), uv(0), uv(1), 0, cat(uv(1), make([]byte, 17), uv(1<<61)))},
		{"ChunkAppends", decodeChunkErr, cat([]byte{format}, uv(MaxEvents), bytes.Repeat([]byte{0}, 16))},
		{"ChunkEvents", decodeChunkErr, cat([]byte{format}, uv(1), []byte{0}, uv(MaxEvents), make([]byte, 14))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.b) > 40 {
				t.Fatalf("input has %d bytes, want a short one", len(tc.b))
			}
			var err error
			n := allocated(func() { err = tc.decode(tc.b) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if n > maxAlloc {
				t.Fatalf("%d-byte input: decoding allocated %d bytes, want ≤ %d", len(tc.b), n, maxAlloc)
			}
		})
	}
}

func decodeRecordErr(b []byte) error { _, err := DecodeRecord(b); return err }

func decodeChunkErr(b []byte) error { _, err := DecodeChunkBody(b); return err }

// Encoding sizes its buffer once, exactly: the computed length is the
// encoding's, so a record or chunk body is one allocation.
func TestEncodeSizedExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		r := randomRecord(rng, 1+rng.IntN(20), 1+rng.IntN(5))
		if got, want := len(appendPlainRecord(nil, &r, recordLen(&r))), recordLen(&r); got != want {
			t.Fatalf("record: encoded %d bytes, sized %d", got, want)
		}
		for _, c := range Chunks(&r) {
			if got, want := len(appendPlainChunkBody(nil, &c, chunkBodyLen(&c))), chunkBodyLen(&c); got != want {
				t.Fatalf("chunk: encoded %d bytes, sized %d", got, want)
			}
		}
	}
}

// Bodies decoded one after another into the same buffers decode as on
// their own, whatever came before (plain, S2, zstd; other types), and the
// second reuses the first's memory; a large chunk's is not kept.
func TestDecodeChunkBodyInto(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	body := func(events, dataLen int) ([]byte, []ChunkAppend) {
		as := []ChunkAppend{{ClientIDs: true, Events: make([]Event, events)}}
		for i := range as[0].Events {
			e := randomEvent(rng)
			e.Type = fmt.Sprintf("Type%d", rng.IntN(12))
			e.Data = bytes.Repeat([]byte{'a' + byte(rng.IntN(3))}, dataLen) // compressible
			as[0].Events[i] = e
		}
		return AppendChunkBody(nil, &Chunk{Appends: as}), as
	}
	var bufs ChunkBuffers
	var prev *Event
	for i, tc := range []struct{ events, dataLen int }{
		{100, 300}, // zstd (16 KiB or more)
		{20, 100},  // S2
		{3, 10},    // plain
		{100, 300},
		{100, 300},
	} {
		b, want := body(tc.events, tc.dataLen)
		got, err := DecodeChunkBodyInto(b, &bufs)
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if d := diffChunkAppends(got, want); d != "" {
			t.Fatalf("body %d: %s", i, d)
		}
		if i == 4 && &got[0].Events[0] != prev {
			t.Fatal("a body of the same size did not reuse the events of the one before")
		}
		prev = &got[0].Events[0]
	}
	// A smaller chunk after a larger one leaves no entry pointing into the
	// larger one's bytes.
	for _, n := range []int{100, 2} {
		b, _ := body(n, 300)
		if _, err := DecodeChunkBodyInto(b, &bufs); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range bufs.events[2:cap(bufs.events)] {
		if e.Data != nil || e.Metadata != nil {
			t.Fatalf("slab entry %d past the chunk still holds %d bytes", i+2, len(e.Data))
		}
	}
	for i, a := range bufs.appends[1:cap(bufs.appends)] {
		if a.Events != nil {
			t.Fatalf("append %d past the chunk still holds events", i+1)
		}
	}
	b, want := body(maxKeptEvents+1, 1)
	got, err := DecodeChunkBodyInto(b, &bufs)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffChunkAppends(got, want); d != "" {
		t.Fatal(d)
	}
	if bufs.events != nil || bufs.appends != nil {
		t.Fatalf("kept the events of a chunk of %d", maxKeptEvents+1)
	}
}

// TestDecodeRefusesNameLengths: a record or chunk body whose stream id or
// event type is longer than an append may give is corrupt (the lengths
// only: CheckNames checks the grammars, and an empty type).
func TestDecodeRefusesNameLengths(t *testing.T) {
	long := strings.Repeat("a", 201)
	for _, tc := range []struct {
		name, stream, typ string
	}{
		{"StreamIDTooLong", long, "T"},
		{"TypeTooLong", "s-1", long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Appends: []Append{{Stream: log.StreamID(tc.stream), FirstVersion: 1, Events: []Event{{Type: tc.typ, Data: []byte(`{}`)}}}}}
			if _, err := DecodeRecord(AppendRecord(nil, &r)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("record: %v, want ErrCorrupt", err)
			}
			if tc.stream != "s-1" {
				return
			}
			c := Chunks(&r)[0]
			if _, err := DecodeChunkBody(AppendChunkBody(nil, &c)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("chunk body: %v, want ErrCorrupt", err)
			}
		})
	}
	r := Record{Appends: []Append{{Stream: log.StreamID(long[:200]), FirstVersion: 1, Events: []Event{{Type: long[:200], Data: []byte(`{}`)}}}}}
	if _, err := DecodeRecord(AppendRecord(nil, &r)); err != nil {
		t.Errorf("names of 200 bytes: %v", err)
	}
}

// TestCheckNames: CheckNames refuses a record whose stream id or event type
// breaks the grammar an append is given it in.
func TestCheckNames(t *testing.T) {
	for _, tc := range []struct {
		stream, typ string
		ok          bool
	}{
		{"order-1", "OrderPlaced", true},
		{"bad stream", "OrderPlaced", false},
		{"-order", "OrderPlaced", false},
		{"order-1", "bad type", false},
		{"order-1", "a@b", false},
		{"order-1", "", false},
	} {
		r := Record{Appends: []Append{{Stream: "ok-1", FirstVersion: 1, Events: []Event{{Type: "T"}}},
			{Stream: log.StreamID(tc.stream), FirstVersion: 1, Events: []Event{{Type: "T"}, {Type: tc.typ}}}}}
		if err := r.CheckNames(); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("stream %q, type %q: %v", tc.stream, tc.typ, err)
		}
	}
}
