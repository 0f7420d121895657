package record

import (
	"encoding/binary"
	"fmt"
)

// formatRun marks a run: several chunks of one stream and bucket, from
// consecutive commits, stored as one row. The format byte, the uvarint
// count of its parts, then each part: the uvarint seq of the record it
// comes from, the varint commit time of that record (Unix milliseconds, a
// Cassandra timestamp's precision, as the row's own time column),
// the uvarint count of its events, the uvarint length of its body and
// the body (AppendChunkBody's encoding, as a row of one chunk holds it).
//
// Why: a stream's appends that wait in its owner's tail are written as
// one row rather than a row each (docs/design-write-path.md, "Fill
// behind the commit"). Cassandra's cost of the stream partitions is
// mostly per row (the memtable insert, building the mutation, merging in
// compaction): on 1-event appends to 10,000 streams, ten appends a row
// cost Cassandra about a fifth less per append than a row each
// (docs/benchmarks.md, Session 16).
const formatRun = 4

// MaxRunParts bounds the parts a run may declare.
const MaxRunParts = 1 << 16

// Part is one chunk of a run: its record's seq and commit time, its
// version range and its body.
type Part struct {
	Seq          int64
	Time         int64 // Unix milliseconds
	FirstVersion int64
	LastVersion  int64
	Body         []byte // a chunk body (AppendChunkBody)
}

// IsRun reports whether a row's body is a run (AppendRun) rather than
// one chunk's body.
func IsRun(b []byte) bool { return len(b) > 0 && b[0] == formatRun }

// AppendRun appends the run of parts, in version order and contiguous,
// to dst.
func AppendRun(dst []byte, parts []Part) []byte {
	dst = append(dst, formatRun)
	dst = binary.AppendUvarint(dst, uint64(len(parts)))
	for i := range parts {
		p := &parts[i]
		dst = binary.AppendUvarint(dst, uint64(p.Seq))
		dst = binary.AppendVarint(dst, p.Time)
		dst = binary.AppendUvarint(dst, uint64(p.LastVersion-p.FirstVersion+1))
		dst = binary.AppendUvarint(dst, uint64(len(p.Body)))
		dst = append(dst, p.Body...)
	}
	return dst
}

// RunLen is the length of AppendRun's encoding of parts.
func RunLen(parts []Part) int {
	n := 1 + uvarintLen(uint64(len(parts)))
	for i := range parts {
		p := &parts[i]
		n += uvarintLen(uint64(p.Seq)) + binary.MaxVarintLen64 + uvarintLen(uint64(p.LastVersion-p.FirstVersion+1)) +
			uvarintLen(uint64(len(p.Body))) + len(p.Body)
	}
	return n
}

// DecodeRun calls fn with each part of run b, whose row holds versions
// first..last, in version order. A part's body aliases b. The parts must
// tile first..last exactly.
func DecodeRun(b []byte, first, last int64, fn func(p *Part) error) error {
	d := decoder{b: b}
	if d.byte() != formatRun {
		return fmt.Errorf("%w: not a run", ErrCorrupt)
	}
	n := d.uvarint()
	if d.err == nil && (n == 0 || n > MaxRunParts) {
		d.fail("run part count out of range")
	}
	v := first
	for i := uint64(0); i < n && d.err == nil; i++ {
		var p Part
		p.Seq = d.int()
		t, k := binary.Varint(d.b)
		if k <= 0 {
			d.fail("bad varint")
			break
		}
		d.b = d.b[k:]
		p.Time = t
		events := d.count()
		size := d.uvarint()
		if d.err != nil {
			break
		}
		if events == 0 || size > uint64(len(d.b)) {
			d.fail("run part out of range")
			break
		}
		p.FirstVersion, p.LastVersion = v, v+int64(events)-1
		if p.LastVersion > last {
			d.fail("run parts beyond the row")
			break
		}
		p.Body, d.b = d.b[:size:size], d.b[size:]
		v = p.LastVersion + 1
		if err := fn(&p); err != nil {
			return err
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	if v != last+1 {
		return fmt.Errorf("%w: run parts end at %d, the row at %d", ErrCorrupt, v-1, last)
	}
	return nil
}
