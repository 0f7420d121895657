package record

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// formatZstd marks a compressed encoding: the format byte, the uvarint
// length of the plain encoding after its format byte, and a zstd frame of
// those bytes. Records and chunk bodies of compressMin bytes or more are
// stored so when it makes them smaller.
//
// Why: a 100-event append of ~200-byte JSON events packs to about a fifth
// with zstd's fastest level (a 13-append log record of 1-event appends to
// about 0.28), at ~0.75 µs of server CPU per event. Every log record's bytes
// travel through Cassandra's Paxos table, commit log, memtable and
// compaction, and every chunk's again through the stream partitions, so
// fewer bytes cost Cassandra less on the write path and replay reads less.
// A single event's chunk (~250 bytes) gains a fifth for ~9 µs: not worth it.
const formatZstd = 2

// compressMin is the smallest plain encoding that is compressed.
const compressMin = 512

// maxPlain bounds the plain length a compressed encoding may declare: a
// log record is bounded by Cassandra's 16 MiB mutation, so more is
// corruption, and the decoder never allocates past it.
const maxPlain = 64 << 20

var (
	// The zstd coder pools its internal encoders and decoders: EncodeAll
	// and DecodeAll are safe for concurrent use.
	zenc = mustCoder(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true)))
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
func appendCompressed(dst []byte, plainLen int, encode func([]byte) []byte) []byte {
	if plainLen < compressMin {
		return encode(dst)
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	plain := encode((*bp)[:0])
	*bp = plain
	start := len(dst)
	dst = append(dst, formatZstd)
	dst = binary.AppendUvarint(dst, uint64(len(plain)-1))
	dst = zenc.EncodeAll(plain[1:], dst)
	if len(dst)-start >= len(plain) {
		return append(dst[:start], plain...)
	}
	return dst
}

// plainEncoding returns b as a plain encoding (format byte first): b itself,
// or what its compressed frame holds.
func plainEncoding(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != formatZstd {
		return b, nil
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n == 0 || n > maxPlain {
		return nil, fmt.Errorf("%w: bad compressed length", ErrCorrupt)
	}
	plain := make([]byte, 1, 1+n)
	plain[0] = format
	plain, err := zdec.DecodeAll(b[1+k:], plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if uint64(len(plain)) != 1+n {
		return nil, fmt.Errorf("%w: compressed length mismatch", ErrCorrupt)
	}
	return plain, nil
}
