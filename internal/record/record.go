package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// ErrCorrupt is returned for bytes that are not a valid record or chunk.
var ErrCorrupt = errors.New("record: corrupt")

// format is the first byte of every encoding, so the layout can change
// compatibly (a reader refuses a format it does not know). This one marks
// a plain encoding without a checksum: written before formatChecked, still
// decoded; a block's parts are plain so, inside its checksummed frame.
const format = 1

// plainFormat reports whether f starts a plain encoding as plainEncoding
// returns it: format, or formatChecked with its checksum verified and cut.
func plainFormat(f byte) bool { return f == format || f == formatChecked }

// MaxEvents bounds the events one record or chunk may declare; larger
// counts are corruption (a commit group is bounded far below it).
const MaxEvents = 1 << 20

// Event is one stored event. Its version and time come from where it is
// stored (the append's first version, the record's commit time).
type Event struct {
	ID       uuid.UUID
	Type     string
	Data     []byte
	Metadata []byte // nil: none
}

// Append is one committed append as the log record holds it.
type Append struct {
	Stream       log.StreamID
	Bucket       int64
	FirstVersion int64
	// OpensBucket is true for the first append of Bucket: the materialiser
	// indexes the bucket (first version, the record's time) before its
	// first chunk.
	OpensBucket bool
	// ClientIDs is true when the client chose the ids: only those can
	// identify a retry, so only they are indexed for idempotency.
	ClientIDs bool
	Events    []Event
}

// LastVersion is the version of the append's last event.
func (a *Append) LastVersion() int64 { return a.FirstVersion + int64(len(a.Events)) - 1 }

// Record is one commit group.
type Record struct {
	Appends []Append
}

// Events counts the events of r.
func (r *Record) Events() int {
	n := 0
	for i := range r.Appends {
		n += len(r.Appends[i].Events)
	}
	return n
}

const (
	flagOpensBucket = 1 << iota
	flagClientIDs
)

// AppendRecord appends the encoding of r to dst, compressed when large
// enough to gain (compress.go): with S2, or zstd from recordZstdMin; else
// plain with its checksum (formatChecked).
func AppendRecord(dst []byte, r *Record) []byte {
	n := recordLen(r)
	c := codecS2
	if n >= recordZstdMin {
		c = codecZstd
	}
	return appendCompressed(dst, n, c, func(dst []byte) []byte { return appendPlainRecord(dst, r, n) })
}

// recordZstdMin is the plain size from which a log record is compressed
// with zstd rather than S2. S2 wins on the small records of commit groups
// of small appends, where zstd pays its table set-up per frame (formatS2);
// a large record (appends of tens of events) packs to about half S2's
// bytes with zstd, and a record's bytes go through Cassandra's Paxos
// table, commit log and compactions, and through every feed read.
const recordZstdMin = 16 << 10

// appendPlainRecord appends the plain encoding of r, n bytes long,
// without a checksum (format).
func appendPlainRecord(dst []byte, r *Record, n int) []byte {
	dst = slices.Grow(dst, n) // one allocation, not one per doubling
	dst = append(dst, format)
	dst = binary.AppendUvarint(dst, uint64(len(r.Appends)))
	for i := range r.Appends {
		a := &r.Appends[i]
		dst = appendString(dst, string(a.Stream))
		dst = binary.AppendUvarint(dst, uint64(a.Bucket))
		dst = binary.AppendUvarint(dst, uint64(a.FirstVersion))
		dst = append(dst, appendFlags(a))
		dst = appendEvents(dst, a.Events)
	}
	return dst
}

// DecodeRecord decodes a record made by AppendRecord. The events' byte
// slices alias b (or, when b is compressed, a buffer of their own).
func DecodeRecord(b []byte) (Record, error) {
	r, _, err := DecodeRecordIn(b, nil)
	return r, err
}

// DecodeRecordIn is DecodeRecord decompressing into buf's backing array
// when it has room (a new buffer otherwise). The events' byte slices alias
// b when it was not compressed (fresh is nil), else fresh (buf's array or
// the new buffer): the caller may reuse fresh once it no longer reads
// them.
func DecodeRecordIn(b, buf []byte) (r Record, fresh []byte, err error) {
	return DecodeRecordInto(b, buf, nil)
}

// Buffers is memory that records' appends and events decode into, one
// record after another (DecodeRecordInto), with the event types seen
// last. A catch-up read of a feed decodes millions of events: fresh
// memory for them was a fifth of the bytes it allocated, all of it for the
// garbage collector to scan.
type Buffers struct {
	appends []Append
	events  []Event
	types   [typeCache]string
	next    int
	// How many entries of appends and events the last record wrote
	// (events: of the slab kept, the last of the record's), and how many
	// events it had in all.
	appendsUsed, eventsUsed, recordEvents int
	// cleared: Clear ran since the last record. A second Clear (a pooled
	// Buffers is cleared when given back, and again by the next decode)
	// would judge the slabs by a record of no events and drop any over
	// keptSlack.
	cleared bool
}

// Clear lets go of what the record decoded last points to (its streams
// and its events' bytes); b keeps its own memory for the next record, but
// not much more than that record used: Buffers pooled by a feed read,
// each kept at the largest record it ever held, would hold many times
// the memory of the rows in flight.
func (b *Buffers) Clear() {
	if b.cleared {
		return
	}
	b.cleared = true
	if cap(b.appends) > 2*b.appendsUsed+keptSlack {
		b.appends = nil
	} else {
		clear(b.appends[:b.appendsUsed])
	}
	if cap(b.events) > 2*b.recordEvents+keptSlack {
		b.events = nil
	} else {
		clear(b.events[:b.eventsUsed])
	}
	b.appendsUsed, b.eventsUsed, b.recordEvents = 0, 0, 0
}

// keptSlack is how many entries beyond twice what the last record used
// Buffers keeps.
const keptSlack = 64

// DecodeRecordInto is DecodeRecordIn with the record's appends and events
// in bufs (nil: fresh memory): they are valid until bufs is used again or
// cleared.
func DecodeRecordInto(b, buf []byte, bufs *Buffers) (r Record, fresh []byte, err error) {
	b, fresh, err = plainEncodingIn(b, buf)
	if err != nil {
		return Record{}, nil, err
	}
	r, err = decodePlainRecord(b, bufs)
	if err != nil {
		return Record{}, nil, err
	}
	return r, fresh, nil
}

// decodePlainRecord decodes a plain encoding of a record, into bufs when
// not nil.
func decodePlainRecord(b []byte, bufs *Buffers) (r Record, err error) {
	d := decoder{b: b}
	if bufs != nil {
		bufs.Clear()
		d.slab, d.types, d.next, d.grow = bufs.events[:0], bufs.types, bufs.next, true
		r.Appends = bufs.appends[:0]
		defer func() {
			bufs.events, bufs.appends, bufs.types, bufs.next = d.slab, r.Appends, d.types, d.next
			bufs.eventsUsed, bufs.appendsUsed = len(d.slab), len(r.Appends)
			bufs.recordEvents, bufs.cleared = r.Events(), false
			// A rare large record's memory is not kept for the next.
			if cap(bufs.events) > maxKeptEvents || cap(bufs.appends) > maxKeptEvents {
				bufs.events, bufs.appends = nil, nil
				bufs.eventsUsed, bufs.appendsUsed = 0, 0
			}
		}()
	}
	if !plainFormat(d.byte()) {
		return Record{}, fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	n := d.count()
	// Each append takes at least 25 bytes (a 1-byte stream, one event of
	// 19): a corrupt count cannot make us allocate more than the input
	// justifies.
	if m := min(n, len(d.b)/25+1); r.Appends == nil || cap(r.Appends) < m {
		r.Appends = make([]Append, 0, m)
	}
	for i := 0; i < n && d.err == nil; i++ {
		d.appendsLeft = min(n-i-1, len(d.b)/25)
		a := Append{Stream: log.StreamID(d.string())}
		a.Bucket = d.int()
		a.FirstVersion = d.int()
		f := d.flags(flagOpensBucket | flagClientIDs)
		a.OpensBucket = f&flagOpensBucket != 0
		a.ClientIDs = f&flagClientIDs != 0
		a.Events = d.events()
		if d.err == nil && (a.FirstVersion < 1 || len(a.Events) == 0 || a.Stream == "") {
			d.fail("empty append")
		}
		// Only that the stream id is not too long: see CheckNames.
		if d.err == nil && len(a.Stream) > log.MaxStreamIDLen {
			d.fail("stream id too long")
		}
		r.Appends = append(r.Appends, a)
	}
	if err := d.end(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// CheckNames checks r's stream ids and event types against the grammars
// an append is given them in (log.ParseStreamID, log.ValidateEventType),
// failing with ErrCorrupt: a record that a catch-up writes to the stream
// partitions (package sequencer) is checked so. The decoders check only
// that the names are not too long (no cost measured): the grammars cost
// a feed read's decode of a record of 1-event appends 5-8 % more
// instructions (BenchmarkRecordDecode under callgrind: ~110 an append for
// a 12-byte stream id, ~120 more for a type new to the decoder, of
// ~2,000-2,900 an append), for names that only a corrupt row (a disk's
// error, another build's bug) would hold.
func (r *Record) CheckNames() error {
	for i := range r.Appends {
		a := &r.Appends[i]
		if !log.ValidStreamID(string(a.Stream)) {
			return fmt.Errorf("%w: invalid stream id %q", ErrCorrupt, a.Stream)
		}
		for j := range a.Events {
			if t := a.Events[j].Type; !log.ValidEventType(t) {
				return fmt.Errorf("%w: stream %s: invalid event type %q", ErrCorrupt, a.Stream, t)
			}
		}
	}
	return nil
}

func appendFlags(a *Append) byte {
	var f byte
	if a.OpensBucket {
		f |= flagOpensBucket
	}
	if a.ClientIDs {
		f |= flagClientIDs
	}
	return f
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// recordLen is the length of AppendRecord's encoding of r.
func recordLen(r *Record) int {
	n := 1 + uvarintLen(uint64(len(r.Appends)))
	for i := range r.Appends {
		a := &r.Appends[i]
		n += uvarintLen(uint64(len(a.Stream))) + len(a.Stream) + uvarintLen(uint64(a.Bucket)) +
			uvarintLen(uint64(a.FirstVersion)) + 1 + eventsLen(a.Events)
	}
	return n
}

// uvarintLen is the length of x's uvarint encoding.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// eventsLen is the length of appendEvents' encoding of es.
func eventsLen(es []Event) int {
	n := uvarintLen(uint64(len(es)))
	for i := range es {
		e := &es[i]
		n += len(e.ID) + uvarintLen(uint64(len(e.Type))) + len(e.Type) + uvarintLen(uint64(len(e.Data))) + len(e.Data) + 1
		if e.Metadata != nil {
			n += uvarintLen(uint64(len(e.Metadata))+1) - 1 + len(e.Metadata)
		}
	}
	return n
}

func appendEvents(dst []byte, es []Event) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(es)))
	for i := range es {
		e := &es[i]
		dst = append(dst, e.ID[:]...)
		dst = appendString(dst, e.Type)
		dst = appendBytes(dst, e.Data)
		// Metadata is optional: 0 = none, else length + 1.
		if e.Metadata == nil {
			dst = append(dst, 0)
		} else {
			dst = binary.AppendUvarint(dst, uint64(len(e.Metadata))+1)
			dst = append(dst, e.Metadata...)
		}
	}
	return dst
}

// decoder reads what the append functions wrote, remembering the first
// error so callers check once.
// typeCache is how many event types a decoder keeps: an aggregate's
// events have a handful of types, and with 4 kept a stream of 8 types
// (the benchmark's) allocated a string for every other event.
const typeCache = 16

type decoder struct {
	b   []byte
	err error
	// slab backs the events of the record's appends: a record of many
	// 1-event appends makes one allocation, not one per append.
	slab        []Event
	grow        bool // a new slab doubles (Buffers)
	appendsLeft int  // after the one being decoded
	// types holds the event types decoded last: a record repeats a few
	// types, and a feed read decodes millions of events.
	types [typeCache]string
	next  int
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	// A last byte of 0 after others is a non-minimal encoding: a second
	// spelling of the same number, so two byte strings would be one row.
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// flags reads a flags byte, refusing bits outside allowed: a flag this
// reader does not know would be dropped silently.
func (d *decoder) flags(allowed byte) byte {
	f := d.byte()
	if f&^allowed != 0 {
		d.fail("unknown flags")
	}
	return f
}

func (d *decoder) int() int64 {
	v := d.uvarint()
	if v > 1<<62 {
		d.fail("number out of range")
		return 0
	}
	return int64(v)
}

func (d *decoder) count() int {
	v := d.uvarint()
	if v > MaxEvents {
		d.fail("count out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("truncated")
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) string() string { return string(d.take(d.uvarint())) }

// eventType is string, from the recent types when it is one of them.
func (d *decoder) eventType() string {
	b := d.take(d.uvarint())
	for _, t := range d.types {
		if t == string(b) { // compared without a copy
			return t
		}
	}
	// Only that it is not too long (see CheckNames), once the type is new
	// to the decoder: the cache holds only types checked.
	// An empty type is not refused here: the encoding's tests and its
	// bounds (an event of 19 bytes at least) count with it.
	if len(b) > log.MaxEventTypeLen {
		d.fail("event type too long")
		return ""
	}
	t := string(b)
	d.types[d.next] = t
	d.next = (d.next + 1) % len(d.types)
	return t
}

// alloc returns n events from the slab (full slice: appending to it
// never runs into the next append's events).
func (d *decoder) alloc(n int) []Event {
	if cap(d.slab)-len(d.slab) < n {
		// Room for n and one event for each append still to decode (each
		// has at least one): a record of 1-event appends gets one slab of
		// exactly its events. Decoding into Buffers, at least twice the
		// slab before: the one kept soon holds a whole record.
		c := n + d.appendsLeft
		if d.grow {
			c = max(c, 2*cap(d.slab))
		}
		d.slab = make([]Event, 0, c)
	}
	l := len(d.slab)
	d.slab = d.slab[:l+n]
	return d.slab[l : l+n : l+n]
}

func (d *decoder) events() []Event {
	n := d.count()
	// Each event takes at least 19 bytes: a corrupt count cannot make us
	// allocate more than the input justifies.
	if n > len(d.b)/19+1 {
		d.fail("count exceeds input")
		return nil
	}
	es := d.alloc(n)
	for i := range es {
		e := &es[i]
		copy(e.ID[:], d.take(16))
		e.Type = d.eventType()
		e.Data = d.take(d.uvarint())
		e.Metadata = nil // a reused slab (ChunkBuffers) holds an earlier event's metadata
		if m := d.uvarint(); m > 0 {
			e.Metadata = d.take(m - 1)
		}
		if d.err != nil {
			return nil
		}
	}
	return es
}
