package record

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// formatRun marks a run: several chunks of one stream and bucket, from
// consecutive commits, stored as one row. The format byte, the uvarint
// count of its parts, then each part: the uvarint seq of the record it
// comes from, the varint commit time of that record (Unix milliseconds, a
// Cassandra timestamp's precision, as the row's own time column),
// the uvarint count of its events, the uvarint length of its body and
// the body (AppendChunkBody's encoding, as a row of one chunk holds it;
// since formatRunChecked, a checked plain one without its checksum:
// appendRun). Written without a checksum before formatRunChecked; read
// still.
//
// Why: a stream's appends that wait in its owner's tail are written as
// one row rather than a row each (docs/design-write-path.md, "Fill
// behind the commit"). Cassandra's cost of the stream partitions is
// mostly per row (the memtable insert, building the mutation, merging in
// compaction): on 1-event appends to 10,000 streams, ten appends a row
// cost Cassandra about a fifth less per append than a row each
// (docs/benchmarks.md, Session 16).
const formatRun = 4

// formatRunChecked marks a checked run: a run (formatRun) with this byte
// in place of its format byte, then the CRC-32C (4 bytes, little endian)
// of every byte before it, as formatChecked is for a record or a chunk
// body. Runs are written so (AppendRun, and a block that compression would
// not make smaller); runs of formatRun still decode.
//
// Why: a reader sends a run's parts one by one as it decodes them (a
// forward read), so a part found corrupt only when its body is decoded
// came after the parts before it were sent. The checksum covers every
// part's bytes, bodies included, and is checked before any part is
// handed on (DecodeRun): a run row with a byte changed anywhere fails
// whole. One pass over a 55 KiB row takes ~3.6 µs (hardware CRC-32C at
// ~15 GB/s), ~14 ns a 200-byte event: about an eighth of decoding the
// parts' bodies, 3 % of their instructions (BenchmarkFillRun,
// docs/benchmarks.md, Session 31). The parts' bodies go in without their
// own checksums (appendRun), so a reader pays one pass a row, not two. A
// block has its zstd frame's checksum instead.
const formatRunChecked = 7

// formatBlock marks a compressed run: the format byte, the uvarint length
// of the run's encoding after its format byte, and a zstd frame of those
// bytes. Blocks (a stream's chunks rewritten a block of versions at a
// time, package streams) are stored so, their parts' bodies plain.
//
// Why: a block of 1-event appends is 256 small bodies, each too small to
// compress alone (compressMin), that repeat one another: JSON events of
// one stream share their field names, types and much of their values.
// Compressed together they take a fraction of the bytes the stream
// partitions would keep, read and send for them (docs/benchmarks.md,
// Session 23).
const formatBlock = 5

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

// IsBlock reports whether a row's body is a compressed run (AppendBlock):
// its parts' bodies are decompressed into a buffer of their own.
func IsBlock(b []byte) bool { return len(b) > 0 && b[0] == formatBlock }

// IsRun reports whether a row's body is a run (AppendRun or AppendBlock)
// rather than one chunk's body.
func IsRun(b []byte) bool {
	return len(b) > 0 && (b[0] == formatRun || b[0] == formatRunChecked || b[0] == formatBlock)
}

// AppendRun appends the run of parts, in version order and contiguous,
// to dst, with its checksum (formatRunChecked).
func AppendRun(dst []byte, parts []Part) []byte {
	start := len(dst)
	return appendChecksum(appendRun(dst, parts), start)
}

// appendRun appends the run of parts without a checksum (formatRun). A
// part's body in its checked form (formatChecked) goes in without its
// checksum (format), once that matches: the run's checksum or its
// block's frame covers it, and a reader then checks one checksum a row,
// not one more a part (see formatRunChecked). A body whose checksum does
// not match goes in as it is, for its reader to find corrupt.
func appendRun(dst []byte, parts []Part) []byte {
	dst = append(dst, formatRun)
	dst = binary.AppendUvarint(dst, uint64(len(parts)))
	for i := range parts {
		p := &parts[i]
		dst = binary.AppendUvarint(dst, uint64(p.Seq))
		dst = binary.AppendVarint(dst, p.Time)
		dst = binary.AppendUvarint(dst, uint64(p.LastVersion-p.FirstVersion+1))
		if len(p.Body) > 0 && p.Body[0] == formatChecked {
			if plain, err := unchecked(p.Body); err == nil {
				dst = binary.AppendUvarint(dst, uint64(len(plain)))
				dst = append(append(dst, format), plain[1:]...)
				continue
			}
		}
		dst = binary.AppendUvarint(dst, uint64(len(p.Body)))
		dst = append(dst, p.Body...)
	}
	return dst
}

// AppendBlock appends the run of parts (as AppendRun) compressed as one,
// to dst, or as AppendRun does when compressing does not make it smaller.
// Each part's body should be plain (PlainChunkBody): a body compressed
// alone gains little from the block's compression.
func AppendBlock(dst []byte, parts []Part) []byte {
	return appendCompressed(dst, RunLen(parts)-checksumLen, codecBlock, func(b []byte) []byte { return appendRun(b, parts) })
}

// PlainChunkBody returns chunk body b uncompressed and without a checksum
// (format), for a block: b itself when it is plain so, else a new slice
// (a checked body's checksum verified). A block's zstd frame checksums
// its parts; a checksum a part would not compress (a block of 256
// 1-event appends, blockParts: 11.3 % more bytes with them).
//
// A body of no format a chunk body has (empty, or its format byte changed)
// is ErrCorrupt, as DecodeChunkBody finds it: a compaction must not give
// it a valid format byte and store it in a block that readers then take.
func PlainChunkBody(b []byte) ([]byte, error) {
	plain, err := plainEncoding(b)
	switch {
	case err != nil:
		return nil, err
	case len(plain) == 0 || !plainFormat(plain[0]):
		return nil, fmt.Errorf("%w: unknown format", ErrCorrupt)
	case plain[0] == format:
		return plain, nil
	}
	return append([]byte{format}, plain[1:]...), nil // plain[0] formatChecked, its checksum verified
}

// RunLen is at least the length of AppendRun's encoding of parts (a
// part's time is counted at its longest).
func RunLen(parts []Part) int {
	n := 1 + uvarintLen(uint64(len(parts))) + checksumLen
	for i := range parts {
		p := &parts[i]
		n += uvarintLen(uint64(p.Seq)) + binary.MaxVarintLen64 + uvarintLen(uint64(p.LastVersion-p.FirstVersion+1)) +
			uvarintLen(uint64(len(p.Body))) + len(p.Body)
	}
	return n
}

// DecodeRun calls fn with each part of run b, whose row holds versions
// first..last, in version order. A part's body aliases b, or for a
// compressed run (AppendBlock) a buffer of its own. The parts must tile
// first..last exactly, their times never decreasing, and the run's
// checksum (formatRunChecked; a block's frame's) must match: a run that
// does not (or is otherwise corrupt) fails with ErrCorrupt before fn sees
// any part. A run of formatRun has no checksum: its parts' bodies are
// checked only as fn decodes them. p is reused for the next part: fn
// copies what it keeps of it (a Part a part on the heap was 3 % of a
// replay's CPU).
func DecodeRun(b []byte, first, last int64, fn func(p *Part) error) error {
	_, err := DecodeRunIn(b, nil, first, last, fn)
	return err
}

// DecodeRunIn is DecodeRun decompressing a block into buf's backing array
// when it has room (a new one otherwise). fresh is the buffer the parts'
// bodies are in when they are not in b itself, for the caller to reuse
// once nothing reads them; nil when b was not compressed.
func DecodeRunIn(b, buf []byte, first, last int64, fn func(p *Part) error) (fresh []byte, err error) {
	if len(b) > 0 && b[0] == formatBlock {
		plain, err := blockPlain(b, buf)
		if err != nil {
			return nil, err
		}
		b, fresh = plain, plain
	}
	return fresh, decodeRun(b, first, last, fn)
}

// decodeRun checks run b whole (its checksum, formatRunChecked, and its
// framing), then hands its parts to fn: a reader sends each part as it
// gets it, so a run found corrupt past its first part (a body's byte
// changed, parts short of the row, trailing bytes) would have had parts
// sent from it already. The parts are kept in a pooled slice meanwhile, about
// 4 ns a part (BenchmarkBlockDecode/Parts, 256 1-event parts: 24.0 µs
// before, 25.2 µs after); reading the header a second time instead cost
// ~20 ns a part, a fifth of decoding such parts.
func decodeRun(b []byte, first, last int64, fn func(p *Part) error) error {
	ps := runParts.Get().(*[]Part)
	defer func() {
		clear(*ps) // the bodies alias b
		if cap(*ps) > maxKeptParts {
			*ps = nil
		}
		*ps = (*ps)[:0]
		runParts.Put(ps)
	}()
	var err error
	if *ps, err = walkRun(b, first, last, (*ps)[:0]); err != nil {
		return err
	}
	for i := range *ps {
		if err := fn(&(*ps)[i]); err != nil {
			return err
		}
	}
	return nil
}

// runParts pools the slices decodeRun keeps a run's parts in.
var runParts = sync.Pool{New: func() any { return new([]Part) }}

// maxKeptParts bounds the parts a pooled slice keeps room for: runs are
// written of at most 256 (package streams).
const maxKeptParts = 1024

// walkRun appends the parts of run b, of a row holding first..last, to
// dst, once b's checksum matches (formatRunChecked). The parts must tile
// first..last exactly, their commit times never decreasing: commit times
// never go backwards within a stream (docs/data-model.md), and time
// travel's search over a stream's chunks relies on it.
func walkRun(b []byte, first, last int64, dst []Part) ([]Part, error) {
	if len(b) > 0 && b[0] == formatRunChecked {
		var err error
		if b, err = unchecked(b); err != nil {
			return dst, err
		}
	} else if len(b) == 0 || b[0] != formatRun {
		return dst, fmt.Errorf("%w: not a run", ErrCorrupt)
	}
	// Versions start at 1: with first >= 1, last-first+1 cannot overflow
	// (a row's key near MaxInt64 made first plus the parts' events wrap).
	if first < 1 || last < first {
		return dst, fmt.Errorf("%w: run row of versions %d..%d", ErrCorrupt, first, last)
	}
	b = b[1:]
	n, ok := runUvarint(&b)
	if !ok || n == 0 || n > MaxRunParts {
		return dst, fmt.Errorf("%w: run part count out of range", ErrCorrupt)
	}
	left := uint64(last - first + 1) // the row's versions after the parts read
	prev := int64(0)
	for i := uint64(0); i < n; i++ {
		seq, ok1 := runUvarint(&b)
		t, k := binary.Varint(b)
		if !ok1 || k <= 0 {
			return dst, fmt.Errorf("%w: bad varint", ErrCorrupt)
		}
		b = b[k:]
		events, ok1 := runUvarint(&b)
		size, ok2 := runUvarint(&b)
		switch {
		case !ok1 || !ok2 || seq > 1<<62:
			return dst, fmt.Errorf("%w: bad varint", ErrCorrupt)
		case i > 0 && t < prev:
			return dst, fmt.Errorf("%w: run part times decrease", ErrCorrupt)
		case events == 0 || events > MaxEvents || size > uint64(len(b)):
			return dst, fmt.Errorf("%w: run part out of range", ErrCorrupt)
		case events > left:
			return dst, fmt.Errorf("%w: run parts beyond the row", ErrCorrupt)
		}
		fv := last - int64(left) + 1
		left -= events
		dst = append(dst, Part{Seq: int64(seq), Time: t, FirstVersion: fv, LastVersion: fv + int64(events) - 1, Body: b[:size:size]})
		b, prev = b[size:], t
	}
	if len(b) != 0 {
		return dst, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
	}
	if left != 0 {
		return dst, fmt.Errorf("%w: run parts end at %d, the row at %d", ErrCorrupt, last-int64(left), last)
	}
	return dst, nil
}

// runUvarint reads a uvarint off *b, refusing a non-minimal one (as the
// decoder does: one spelling of each number).
func runUvarint(b *[]byte) (uint64, bool) {
	v, k := binary.Uvarint(*b)
	if k <= 0 || k > 1 && (*b)[k-1] == 0 {
		return 0, false
	}
	*b = (*b)[k:]
	return v, true
}

// blockPlain returns the run a compressed run (formatBlock) holds, in
// buf's backing array when it has room, else in a new buffer: its parts'
// bodies alias it for as long as a reader keeps their events.
func blockPlain(b, buf []byte) ([]byte, error) {
	n, k, ok := frameLen(b)
	if !ok {
		return nil, fmt.Errorf("%w: bad compressed length", ErrCorrupt)
	}
	if err := frameAgrees(formatZstd, b[1+k:], n); err != nil {
		return nil, err
	}
	if uint64(cap(buf)) < 1+n {
		buf = make([]byte, 0, 1+n)
	}
	buf = buf[:1+n]
	buf[0] = formatRun
	// DecodeAll writes at most cap(dst) (WithDecodeAllCapLimit): a frame
	// longer than it declares fails rather than grows.
	out, err := zdec.DecodeAll(b[1+k:], buf[1:1:1+n])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if uint64(len(out)) != n {
		return nil, fmt.Errorf("%w: compressed length mismatch", ErrCorrupt)
	}
	if &out[0] != &buf[1] {
		copy(buf[1:], out)
	}
	return buf, nil
}
