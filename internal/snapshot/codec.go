package snapshot

import (
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
)

// Compression names the algorithm of the blobs this package writes; it is
// recorded with each stored snapshot so a later format can be told apart.
const Compression = "zstd"

var (
	// ErrCorrupt means a blob is not a valid snapshot: bad magic or version,
	// truncated, checksum mismatch, or a zstd error.
	ErrCorrupt = errors.New("snapshot: corrupt blob")

	// ErrTooLarge means a well-formed blob declares a state larger than the
	// codec's limit. It is reported before anything is decompressed.
	ErrTooLarge = errors.New("snapshot: decoded state too large")
)

// level is the zstd level for every snapshot, chosen with BenchmarkLevels on
// realistic order-aggregate JSON (100 KB / 5 MB, 2-core AMD EPYC, best runs):
//
//	SpeedDefault:           ratio 7.2 / 8.2, encode ~320 / 300 MB/s
//	SpeedBetterCompression: ratio 7.7 / 9.2, encode ~200 / 150 MB/s
//	SpeedBestCompression:   ratio 7.8 / 9.2, encode ~25 / 30 MB/s
//
// and decode 1.8-2.2 GB/s for all. Snapshots are written once per many
// events, off the append path, and read on every cold load: 7-12% smaller
// blobs (less Cassandra storage and I/O, more headroom under the 16 MiB
// mutation limit) are worth ~20 ms more to encode 5 MB. Best adds nothing.
const level = zstd.SpeedBetterCompression

// window bounds how far back the encoder looks for a match. The level's
// default (8 MiB, with a history buffer of twice that) kept 16 MiB per
// pooled encoder alive for the life of the process once one snapshot was
// written: a third of a busy server's live heap, which the collector then
// marked on every cycle. At 1 MiB, with the lower-memory buffers, the
// 5 MB state packs to 1/9.10 against 1/9.15 and the 100 KB one is
// unchanged (BenchmarkLevels' states, Session 20).
const window = 1 << 20

// Codec encodes and decodes snapshot blobs. It is safe for concurrent use:
// zstd's EncodeAll and DecodeAll keep pools of internal encoders/decoders.
type Codec struct {
	enc        *zstd.Encoder
	dec        *zstd.Decoder
	maxDecoded int
}

// NewCodec returns a codec whose Decode rejects states longer than maxDecoded
// bytes with ErrTooLarge; the same bound caps the decoder's memory.
func NewCodec(maxDecoded int) (*Codec, error) {
	if maxDecoded < 1 {
		return nil, fmt.Errorf("snapshot: maxDecoded must be positive, got %d", maxDecoded)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithWindowSize(window),
		zstd.WithLowerEncoderMem(true),
		// Our CRC-32C covers the state; zstd's own checksum would be a second
		// pass and 4 more bytes for the same guarantee.
		zstd.WithEncoderCRC(false),
		// Always one frame with a recorded content size, even for empty or
		// tiny states, so Decode can check it against the header.
		zstd.WithZeroFrames(true),
		zstd.WithSingleSegment(true),
	)
	if err != nil {
		return nil, fmt.Errorf("snapshot: zstd encoder: %w", err)
	}
	// Decode enforces maxDecoded exactly before decompressing; zstd's own
	// limits are a backstop and cannot go below its 1 KiB minimum window.
	zmax := max(uint64(maxDecoded), zstd.MinWindowSize)
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(zmax),
		zstd.WithDecoderMaxWindow(zmax),
		// Decode into exactly the declared length, never grow dst.
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("snapshot: zstd decoder: %w", err)
	}
	return &Codec{enc: enc, dec: dec, maxDecoded: maxDecoded}, nil
}

// Encode appends the framed, compressed state to dst and returns it. Any
// bytes are accepted, including none. Encode does not apply the codec's
// limit; callers bound what they store (see doc.go).
func (c *Codec) Encode(dst, state []byte) []byte {
	dst = appendHeader(dst, state)
	return c.enc.EncodeAll(state, dst)
}

// Decode verifies blob and appends the state it holds to dst. It returns
// ErrTooLarge if the state exceeds the limit and ErrCorrupt for any other
// invalid blob; on error dst is returned with its length unchanged. If dst
// lacks room for the declared length (at most the limit), Decode allocates
// it once; otherwise it allocates next to nothing, whatever the blob claims.
func (c *Codec) Decode(dst, blob []byte) ([]byte, error) {
	h, frame, err := parseHeader(blob)
	if err != nil {
		return dst, err
	}
	if err := checkFrame(frame, h.length); err != nil {
		return dst, err
	}
	if h.length > uint64(c.maxDecoded) {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, h.length, c.maxDecoded)
	}
	n := int(h.length)
	start := len(dst)
	buf := dst
	if cap(buf)-start < n {
		buf = make([]byte, start, start+n)
		copy(buf, dst)
	}
	// The capped slice makes the decoder fail rather than grow past n.
	out, err := c.dec.DecodeAll(frame, buf[:start:start+n])
	if err != nil {
		return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != start+n {
		return dst, fmt.Errorf("%w: decoded %d bytes, header says %d", ErrCorrupt, len(out)-start, n)
	}
	// Verify the bytes we return (in buf), not the decoder's view of them.
	buf = buf[:start+n]
	if crc32.Checksum(buf[start:], castagnoli) != h.checksum {
		return dst, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return buf, nil
}

// Close releases the encoder and decoder. The codec must not be used after.
func (c *Codec) Close() {
	c.enc.Close()
	c.dec.Close()
}
