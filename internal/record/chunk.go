package record

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/eventlog/eventlog/internal/log"
)

// Chunk is one stream's consecutive appends of one commit, all in one
// bucket: the unit the stream partitions store (one row, keyed by its
// first version). Keeping the appends apart lets a retry be told from a
// request that repeats only part of an earlier append.
type Chunk struct {
	Stream       log.StreamID
	Bucket       int64
	FirstVersion int64
	OpensBucket  bool
	Appends      []ChunkAppend
}

// ChunkAppend is one append inside a chunk.
type ChunkAppend struct {
	ClientIDs bool
	Events    []Event
}

// LastVersion is the version of the chunk's last event.
func (c *Chunk) LastVersion() int64 {
	v := c.FirstVersion - 1
	for i := range c.Appends {
		v += int64(len(c.Appends[i].Events))
	}
	return v
}

// Chunks splits r into the chunks the stream partitions store, in record
// order: consecutive appends of one stream to one bucket share a chunk.
// Appends of a stream in one record are consecutive in version (the
// sequencer assigns them in order), so a chunk's events are contiguous.
func Chunks(r *Record) []Chunk {
	var out []Chunk
	last := map[log.StreamID]int{} // stream -> index of its latest chunk in out
	for i := range r.Appends {
		a := &r.Appends[i]
		if j, ok := last[a.Stream]; ok && out[j].Bucket == a.Bucket && !a.OpensBucket && out[j].LastVersion()+1 == a.FirstVersion {
			out[j].Appends = append(out[j].Appends, ChunkAppend{ClientIDs: a.ClientIDs, Events: a.Events})
			continue
		}
		last[a.Stream] = len(out)
		out = append(out, Chunk{
			Stream: a.Stream, Bucket: a.Bucket, FirstVersion: a.FirstVersion, OpensBucket: a.OpensBucket,
			Appends: []ChunkAppend{{ClientIDs: a.ClientIDs, Events: a.Events}},
		})
	}
	return out
}

// AppendChunkBody appends the encoding of c's appends to dst (the stream,
// bucket and first version are the row's key, not part of the body),
// compressed when large enough to gain (compress.go), else plain with its
// checksum (formatChecked).
func AppendChunkBody(dst []byte, c *Chunk) []byte {
	n := chunkBodyLen(c)
	return appendCompressed(dst, n, codecZstd, func(dst []byte) []byte { return appendPlainChunkBody(dst, c, n) })
}

// appendPlainChunkBody appends the plain encoding of c's appends, n bytes,
// without a checksum (format).
func appendPlainChunkBody(dst []byte, c *Chunk, n int) []byte {
	dst = slices.Grow(dst, n)
	dst = append(dst, format)
	dst = binary.AppendUvarint(dst, uint64(len(c.Appends)))
	for i := range c.Appends {
		a := &c.Appends[i]
		var f byte
		if a.ClientIDs {
			f |= flagClientIDs
		}
		dst = append(dst, f)
		dst = appendEvents(dst, a.Events)
	}
	return dst
}

// chunkBodyLen is the length of AppendChunkBody's encoding of c.
func chunkBodyLen(c *Chunk) int {
	n := 1 + uvarintLen(uint64(len(c.Appends)))
	for i := range c.Appends {
		n += 1 + eventsLen(c.Appends[i].Events)
	}
	return n
}

// DecodeChunkBody decodes a body made by AppendChunkBody into c.Appends.
// The events' byte slices alias b (or, when b is compressed, a buffer of
// their own).
func DecodeChunkBody(b []byte) ([]ChunkAppend, error) {
	return DecodeChunkBodyInto(b, nil)
}

// ChunkBuffers is memory that chunk bodies decode into, one after another
// (DecodeChunkBodyInto): the plain encoding of a compressed body, the
// events, the appends, and the event types seen last. A replay decodes a
// chunk of up to a few hundred events for every few tens of kilobytes it
// sends; fresh memory for each was an eighth of its CPU (allocating and
// zeroing it, pprof of a 1,000,000-event NDJSON read).
type ChunkBuffers struct {
	plain   []byte
	events  []Event
	appends []ChunkAppend
	types   [typeCache]string
	next    int
	// How many entries of events and appends the last chunk wrote.
	eventsUsed, appendsUsed int
}

// ChunkBuffers keeps at most this much memory from one chunk to the next.
const (
	maxKeptPlain  = 1 << 20
	maxKeptEvents = 4096
)

// DecodeChunkBodyInto is DecodeChunkBody into bufs (nil: fresh memory).
// The result and its events' byte slices may alias bufs: they are valid
// until bufs is used again.
func DecodeChunkBodyInto(b []byte, bufs *ChunkBuffers) ([]ChunkAppend, error) {
	var (
		fresh []byte
		err   error
	)
	if bufs == nil {
		b, err = plainEncoding(b)
	} else if b, fresh, err = plainEncodingIn(b, bufs.plain); fresh != nil {
		bufs.plain = fresh
	}
	if err != nil {
		return nil, err
	}
	d := decoder{b: b}
	var out []ChunkAppend
	if bufs != nil {
		d.slab, d.types, d.next = bufs.events[:0], bufs.types, bufs.next
		out = bufs.appends[:0]
		defer func() {
			// Entries past what this chunk used still point into earlier
			// chunks' bytes (their plain buffers): cleared, the buffers
			// keep only this chunk's alive.
			clear(d.slab[len(d.slab):max(len(d.slab), min(cap(d.slab), bufs.eventsUsed))])
			clear(out[len(out):max(len(out), min(cap(out), bufs.appendsUsed))])
			bufs.events, bufs.appends, bufs.types, bufs.next = d.slab, out, d.types, d.next
			bufs.eventsUsed, bufs.appendsUsed = len(d.slab), len(out)
			// A rare large chunk's memory is not kept for the next, nor
			// the events and appends that point into it.
			if cap(bufs.plain) > maxKeptPlain || cap(bufs.events) > maxKeptEvents {
				bufs.plain, bufs.events, bufs.appends = nil, nil, nil
				bufs.eventsUsed, bufs.appendsUsed = 0, 0
			}
		}()
	}
	if !plainFormat(d.byte()) {
		return nil, fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	n := d.count()
	if out == nil {
		// Each append takes at least 21 bytes (one event of 19): see
		// DecodeRecord.
		out = make([]ChunkAppend, 0, min(n, len(d.b)/21+1))
	}
	for i := 0; i < n && d.err == nil; i++ {
		d.appendsLeft = min(n-i-1, len(d.b)/21)
		f := d.flags(flagClientIDs)
		a := ChunkAppend{ClientIDs: f&flagClientIDs != 0, Events: d.events()}
		if d.err == nil && len(a.Events) == 0 {
			d.fail("empty append")
		}
		out = append(out, a)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// ChunkBodyEvents counts the events of plain chunk body b (PlainChunkBody)
// without decoding them: it reads the lengths that frame them and skips
// their bytes, allocating nothing, so it checks the body's framing (as
// DecodeChunkBody does) but not what DecodeChunkBody checks inside an
// event. A compaction checks each chunk it copies into a block with it
// (package streams): ~70 ns a 1-event body, about a tenth of what
// compressing the block costs (BenchmarkBlockCompactCheck: 17-20 µs
// against 130-220 µs for 256 of them), and no decode's allocations.
func ChunkBodyEvents(b []byte) (int, error) {
	d := decoder{b: b}
	if d.byte() != format {
		return 0, fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	n, total := d.count(), 0
	for i := 0; i < n && d.err == nil; i++ {
		d.flags(flagClientIDs)
		m := d.count()
		if d.err == nil && m == 0 {
			d.fail("empty append")
		}
		for j := 0; j < m && d.err == nil; j++ {
			d.take(16)
			d.take(d.uvarint()) // type
			d.take(d.uvarint()) // data
			if k := d.uvarint(); k > 0 {
				d.take(k - 1) // metadata
			}
		}
		total += m
	}
	if err := d.end(); err != nil {
		return 0, err
	}
	return total, nil
}
