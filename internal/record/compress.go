package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// formatZstd marks a compressed encoding: the format byte, the uvarint
// length of the plain encoding after its format byte, and a zstd frame of
// those bytes. Chunk bodies of compressMin bytes or more are stored so
// when it makes them smaller (log records were too, before formatS2; both
// still decode).
//
// Why: a 100-event append of ~200-byte JSON events packs to about a fifth
// with zstd's fastest level (a 13-append log record of 1-event appends to
// about 0.28), at ~0.75 µs of server CPU per event. Every log record's bytes
// travel through Cassandra's Paxos table, commit log, memtable and
// compaction, and every chunk's again through the stream partitions, so
// fewer bytes cost Cassandra less on the write path and replay reads less.
// A single event's chunk (~250 bytes) gains a fifth for ~9 µs: not worth it.
const formatZstd = 2

// formatS2 marks an S2 encoding: the format byte, the uvarint length of
// the plain encoding after its format byte, the CRC-32C of those bytes
// (4 bytes, little endian: an S2 block has no checksum of its own, a
// zstd frame has) and an S2 block of them. Log records use it, chunk
// bodies zstd (both decode either).
//
// Why: a log record is compressed on the commit path and decoded by every
// feed read; most are a commit group of small appends (~3.8 KB plain for
// twelve 1-event appends). On such records S2 (EncodeBetter) packs to
// 0.44 against zstd's 0.32, encodes in 11 µs against 30 and decodes in
// 3 µs against 10 (zstd pays its table set-up per small frame). Measured
// (docs/benchmarks.md, Session 10): a feed read of 1-event appends took
// 22 % less server CPU per event, ingest no more Cassandra CPU. Chunks
// are the stream partitions' long-term storage, written off the commit
// path: zstd's smaller bytes are worth more there.
const formatS2 = 3

// formatChecked marks a checked plain encoding of a log record or a chunk
// body: the plain encoding with this byte in place of its format byte,
// then the CRC-32C (4 bytes, little endian) of every byte before it.
// Every plain encoding is written so: those under compressMin and those
// compression would not make smaller. Plain encodings of before it
// (format, no checksum) still decode.
//
// Why: a compressed encoding carries a checksum (a zstd frame's, formatS2's
// CRC-32C), a plain one had none, and most rows are plain (a 1-event
// append's chunk is ~250 bytes): a byte changed on disk or on its way
// (a bad sector, a bit flipped in memory) in an event's id, type or data
// decoded as valid and was served as another event. Checking costs
// ~20 ns a 1-event chunk body and 4 bytes (docs/benchmarks.md, Session 31).
const formatChecked = 6

// checksumLen is the length of a checked encoding's checksum.
const checksumLen = 4

// codec says how a plain encoding is compressed.
type codec uint8

const (
	codecZstd codec = iota
	codecS2
	codecBlock // zstd, of a run (formatBlock)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compressMin is the smallest plain encoding that is compressed.
const compressMin = 512

// maxPlain bounds the plain length a compressed encoding may declare: a
// log record is bounded by Cassandra's 16 MiB mutation, so more is
// corruption, and the decoder never allocates past it.
const maxPlain = 64 << 20

var (
	// The zstd coder pools its internal encoders and decoders: EncodeAll
	// and DecodeAll are safe for concurrent use. A 512 KiB window rather
	// than the level's 4 MiB: each pooled encoder keeps 0.6 MiB of history
	// alive instead of 4.1 (live heap the collector marks every cycle),
	// and JSON events repeat their neighbours, so only encodings past the
	// window lose a little (the 5 MB JSON of the snapshot benchmark packs
	// to 1/9.0 against 1/9.15).
	zenc = mustCoder(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(512<<10)))
	zdec = mustCoder(zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(maxPlain), zstd.WithDecoderMaxWindow(maxPlain),
		zstd.WithDecodeAllCapLimit(true)))

	// scratch holds plain encodings on their way to compression.
	scratch = sync.Pool{New: func() any { return new([]byte) }}
)

func mustCoder[T any](c T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("record: zstd: %v", err)) // only for invalid options
	}
	return c
}

// appendCompressed appends to dst the encoding encode makes (a plain one,
// starting with format), compressed when that is worth it.
// A plain encoding is appended in its checked form (appendChecksum); what
// is compressed is the plain encoding without a checksum (the frame has
// one of its own).
func appendCompressed(dst []byte, plainLen int, c codec, encode func([]byte) []byte) []byte {
	if plainLen < compressMin {
		start := len(dst)
		dst = slices.Grow(dst, plainLen+checksumLen) // one allocation with the checksum
		return appendChecksum(encode(dst), start)
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	plain := encode((*bp)[:0])
	*bp = plain
	start := len(dst)
	if c == codecS2 {
		dst = append(dst, formatS2)
		dst = binary.AppendUvarint(dst, uint64(len(plain)-1))
		dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(plain[1:], castagnoli))
		dst = slices.Grow(dst, s2.MaxEncodedLen(len(plain)-1))
		enc := s2.EncodeBetter(dst[len(dst):cap(dst)], plain[1:])
		dst = dst[:len(dst)+len(enc)]
	} else {
		format := byte(formatZstd)
		if c == codecBlock {
			format = formatBlock
		}
		dst = append(dst, format)
		dst = binary.AppendUvarint(dst, uint64(len(plain)-1))
		dst = zenc.EncodeAll(plain[1:], dst)
	}
	if len(dst)-start >= len(plain)+checksumLen {
		dst = slices.Grow(dst[:start], len(plain)+checksumLen)
		return appendChecksum(append(dst, plain...), start)
	}
	return dst
}

// appendChecksum turns the plain encoding dst[start:] (of a record, a
// chunk body or a run) into its checked form: its format byte replaced
// (formatChecked, formatRunChecked), the CRC-32C of the result appended.
func appendChecksum(dst []byte, start int) []byte {
	if dst[start] == formatRun {
		dst[start] = formatRunChecked
	} else {
		dst[start] = formatChecked
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// unchecked returns checked encoding b without its checksum (its format
// byte still the checked one), once the checksum matches.
func unchecked(b []byte) ([]byte, error) {
	n := len(b) - checksumLen
	if n < 1 {
		return nil, fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return b[:n:n], nil
}

// plainEncoding returns b as a plain encoding, its format byte first:
// format, or formatChecked when b is a checked one (its checksum verified
// and cut off: b without its last 4 bytes); or what b's compressed frame
// holds, format first. The decoders take either byte.
func plainEncoding(b []byte) ([]byte, error) {
	plain, _, err := plainEncodingIn(b, nil)
	return plain, err
}

// plainEncodingIn is plainEncoding decompressing into buf's backing array
// when it has room (a new one otherwise). fresh is the buffer the plain
// encoding is in when it is not b itself (buf's array or the new one), for
// the caller to reuse once nothing reads the plain encoding; nil when b
// was plain.
func plainEncodingIn(b, buf []byte) (plain, fresh []byte, err error) {
	if len(b) > 0 && b[0] == formatChecked {
		plain, err := unchecked(b)
		return plain, nil, err
	}
	if !compressed(b) {
		return b, nil, nil
	}
	n, k, ok := frameLen(b)
	if !ok {
		return nil, nil, fmt.Errorf("%w: bad compressed length", ErrCorrupt)
	}
	// The length is checked against the one the frame itself records
	// before the buffer for it is allocated: one damaged length byte must
	// not cost an allocation of up to maxPlain (frameAgrees).
	if err := frameAgrees(b[0], b[1+k:], n); err != nil {
		return nil, nil, err
	}
	if uint64(cap(buf)) < 1+n {
		buf = make([]byte, 0, 1+n)
	}
	if b[0] == formatS2 {
		b = b[1+k:]
		sum, block := binary.LittleEndian.Uint32(b), b[4:]
		plain := buf[:1+n]
		plain[0] = format
		if _, err := s2.Decode(plain[1:], block); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if crc32.Checksum(plain[1:], castagnoli) != sum {
			return nil, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
		}
		return plain, plain, nil
	}
	// DecodeAll writes at most cap(dst) (WithDecodeAllCapLimit): a frame
	// whose content is longer than it declared fails instead of growing.
	// It is given an empty dst after the format byte: into a dst that
	// holds bytes already it decodes each block aside and copies it over
	// (a tenth of a replay's decoding).
	buf = buf[:1+n]
	buf[0] = format
	out, err := zdec.DecodeAll(b[1+k:], buf[1:1])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if uint64(len(out)) != n {
		return nil, nil, fmt.Errorf("%w: compressed length mismatch", ErrCorrupt)
	}
	if &out[0] != &buf[1] { // not expected with the cap limit; but never wrong
		copy(buf[1:], out)
	}
	return buf, buf, nil
}

// frameAgrees checks n, the plain length a compressed encoding of format
// declares, against what frame (the bytes after the declared length)
// records of it: an S2 block's decoded length (after the checksum), or a
// zstd frame's content size. Only then is a buffer of n bytes worth
// allocating. A zstd frame without a content size is refused: EncodeAll,
// the only encoder these encodings have had, writes it for every content
// of 256 bytes or more, and nothing under compressMin is compressed.
func frameAgrees(format byte, frame []byte, n uint64) error {
	if format == formatS2 {
		if len(frame) < 4 {
			return fmt.Errorf("%w: checksum missing", ErrCorrupt)
		}
		if l, err := s2.DecodedLen(frame[4:]); err != nil || uint64(l) != n {
			return fmt.Errorf("%w: compressed length mismatch", ErrCorrupt)
		}
		return nil
	}
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		return fmt.Errorf("%w: zstd frame header: %v", ErrCorrupt, err)
	}
	if !h.HasFCS || h.FrameContentSize != n {
		return fmt.Errorf("%w: compressed length mismatch", ErrCorrupt)
	}
	if !h.HasCheckSum {
		return fmt.Errorf("%w: zstd frame without a checksum", ErrCorrupt)
	}
	return nil
}

// PlainLen is the length of the plain encoding b holds when b is
// compressed (what DecodeRecordIn needs of its buffer), 0 when b is plain
// (checked or not) or not a valid frame (its declared length not the one its frame
// records: a reader sizing a buffer by it allocates nothing for it).
func PlainLen(b []byte) int {
	if !compressed(b) {
		return 0
	}
	n, k, ok := frameLen(b)
	if !ok || frameAgrees(b[0], b[1+k:], n) != nil {
		return 0
	}
	return int(1 + n)
}

// compressed reports whether b is a compressed frame (else it is plain).
func compressed(b []byte) bool {
	return len(b) > 0 && (b[0] == formatZstd || b[0] == formatS2)
}

// frameLen reads the header of compressed frame b: n, the plain length
// it declares after the format byte, and k, the header's bytes after it.
func frameLen(b []byte) (n uint64, k int, ok bool) {
	n, k = binary.Uvarint(b[1:])
	return n, k, k > 0 && n > 0 && n <= maxPlain
}
