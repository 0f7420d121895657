package snapshot

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
)

// Header layout; see doc.go. Changing any of it means a new formatVersion.
const (
	magicPrefix   = "ELS"
	formatVersion = 1
	magicLen      = len(magicPrefix) + 1
	checksumLen   = 4
)

// castagnoli is CRC-32C: hardware-accelerated on amd64 and arm64, and in the
// standard library, so the checksum costs no dependency and little time.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the fixed part of a blob that precedes the zstd frame.
type header struct {
	length   uint64 // uncompressed state length
	checksum uint32 // CRC-32C of the uncompressed state
}

func appendHeader(dst []byte, state []byte) []byte {
	dst = append(dst, magicPrefix...)
	dst = append(dst, formatVersion)
	dst = binary.AppendUvarint(dst, uint64(len(state)))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(state, castagnoli))
}

// parseHeader splits blob into its header and zstd frame. Every error wraps
// ErrCorrupt.
func parseHeader(blob []byte) (header, []byte, error) {
	var h header
	if len(blob) < magicLen || string(blob[:len(magicPrefix)]) != magicPrefix {
		return h, nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if v := blob[len(magicPrefix)]; v != formatVersion {
		return h, nil, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, v)
	}
	rest := blob[magicLen:]
	n, k := binary.Uvarint(rest)
	if k <= 0 {
		return h, nil, fmt.Errorf("%w: bad length", ErrCorrupt)
	}
	// Only the minimal encoding is valid, so each state has exactly one header.
	if k != uvarintLen(n) {
		return h, nil, fmt.Errorf("%w: non-minimal length", ErrCorrupt)
	}
	rest = rest[k:]
	if len(rest) < checksumLen {
		return h, nil, fmt.Errorf("%w: truncated header", ErrCorrupt)
	}
	h.length = n
	h.checksum = binary.LittleEndian.Uint32(rest)
	return h, rest[checksumLen:], nil
}

func uvarintLen(x uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], x)
}

// checkFrame reads the zstd frame's headers without decompressing. The frame
// must record the same content size as our header: the encoder always writes
// it (single-segment frames), and because two independent fields must agree,
// a damaged length byte reads as ErrCorrupt, never as ErrTooLarge. The frame
// must also end exactly at the end of the blob; zstd itself would accept
// further frames, skippable ones included.
func checkFrame(frame []byte, length uint64) error {
	var zh zstd.Header
	if err := zh.Decode(frame); err != nil {
		return fmt.Errorf("%w: zstd frame header: %v", ErrCorrupt, err)
	}
	switch {
	case zh.Skippable:
		return fmt.Errorf("%w: skippable zstd frame", ErrCorrupt)
	case zh.DictionaryID != 0:
		return fmt.Errorf("%w: zstd frame needs dictionary %d", ErrCorrupt, zh.DictionaryID)
	case !zh.HasFCS:
		return fmt.Errorf("%w: zstd frame has no content size", ErrCorrupt)
	case zh.FrameContentSize != length:
		return fmt.Errorf("%w: zstd content size %d, header says %d", ErrCorrupt, zh.FrameContentSize, length)
	}
	// Walk the block headers (RFC 8878 3.1.1.2): 3 bytes little-endian,
	// bit 0 last block, bits 1-2 type, bits 3-23 size.
	pos := zh.HeaderSize
	for {
		if len(frame)-pos < 3 {
			return fmt.Errorf("%w: truncated zstd frame", ErrCorrupt)
		}
		bh := uint32(frame[pos]) | uint32(frame[pos+1])<<8 | uint32(frame[pos+2])<<16
		pos += 3
		size := int(bh >> 3)
		switch (bh >> 1) & 3 {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return fmt.Errorf("%w: reserved zstd block type", ErrCorrupt)
		}
		if len(frame)-pos < size {
			return fmt.Errorf("%w: truncated zstd frame", ErrCorrupt)
		}
		pos += size
		if bh&1 != 0 {
			break
		}
	}
	if zh.HasCheckSum {
		pos += 4
	}
	switch {
	case pos > len(frame):
		return fmt.Errorf("%w: truncated zstd frame", ErrCorrupt)
	case pos < len(frame):
		return fmt.Errorf("%w: %d bytes after zstd frame", ErrCorrupt, len(frame)-pos)
	}
	return nil
}
