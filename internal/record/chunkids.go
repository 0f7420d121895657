package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/google/uuid"
)

// idsFormat is the first byte of a chunk's id list (AppendChunkIDs) without
// a checksum: written by builds before idsFormatChecked (the ids column of
// rows written between migrations 0004 and 0005), still decoded.
const idsFormat = 1

// idsFormatChecked is the first byte of a chunk's id list with a checksum:
// idsFormat's entries, then the CRC-32C (4 bytes, little endian) of every
// byte before it, format byte included. What AppendChunkIDs writes.
//
// Why: an id list is what recognises an append's retry. A byte changed in
// an id of an unchecked list decodes as another id, so the retry of the
// append it names is not recognised and is written again; a checked list
// that does not match is ErrCorrupt, and a lookup that reads it fails
// rather than answer "no such id".
const idsFormatChecked = 2

// AppendChunkIDs appends the client-chosen ids of c's events to dst, each
// as the uvarint offset of its version from c.FirstVersion and its 16
// bytes, then a CRC-32C of the list (idsFormatChecked): the chunk row's
// ids column, and the ids a shard holds for a chunk not yet written
// (streams.Pending). A stream's first chunks keep their ids there rather
// than in a row per id, and a lookup of those ids reads about 17 bytes an
// event instead of the chunk's whole body. A chunk without client ids
// encodes as the format byte and the checksum alone.
func AppendChunkIDs(dst []byte, c *Chunk) []byte {
	start := len(dst)
	dst = append(dst, idsFormatChecked)
	off := uint64(0)
	for i := range c.Appends {
		a := &c.Appends[i]
		for j := range a.Events {
			if a.ClientIDs {
				dst = binary.AppendUvarint(dst, off)
				dst = append(dst, a.Events[j].ID[:]...)
			}
			off++
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeChunkIDs calls fn with each id AppendChunkIDs encoded in b, for a
// chunk whose first version is first, and its version, in version order.
// A checked list (idsFormatChecked) is checked whole before fn sees any
// id: one whose checksum does not match is ErrCorrupt, never fewer or
// other ids. An unchecked one (idsFormat) can be found corrupt only after
// fn saw the ids before the fault.
func DecodeChunkIDs(b []byte, first int64, fn func(id uuid.UUID, version int64)) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: chunk ids: empty", ErrCorrupt)
	}
	switch b[0] {
	case idsFormatChecked:
		n := len(b) - checksumLen
		if n < 1 {
			return fmt.Errorf("%w: chunk ids: truncated", ErrCorrupt)
		}
		if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
			return fmt.Errorf("%w: chunk ids: checksum mismatch", ErrCorrupt)
		}
		b = b[:n]
	case idsFormat:
	default:
		return fmt.Errorf("%w: chunk ids: unknown format", ErrCorrupt)
	}
	b = b[1:]
	next := uint64(0) // offsets strictly increase
	for len(b) > 0 {
		off, k := binary.Uvarint(b)
		// A last byte of 0 after others is a non-minimal varint: refused,
		// as the chunk decoder refuses it (one column, one spelling).
		if k <= 0 || k > 1 && b[k-1] == 0 || off < next || off > 1<<31 || len(b) < k+16 {
			return fmt.Errorf("%w: chunk ids: bad entry", ErrCorrupt)
		}
		fn(uuid.UUID(b[k:k+16]), first+int64(off))
		b, next = b[k+16:], off+1
	}
	return nil
}
