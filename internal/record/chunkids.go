package record

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
)

// idsFormat is the first byte of a chunk's id list (AppendChunkIDs).
const idsFormat = 1

// AppendChunkIDs appends the client-chosen ids of c's events to dst, each
// as the uvarint offset of its version from c.FirstVersion and its 16
// bytes: the chunk row's ids column. A stream's first chunks keep their
// ids there rather than in a row per id, and a lookup of those ids reads
// about 17 bytes an event instead of the chunk's whole body. A chunk
// without client ids encodes as the format byte alone.
func AppendChunkIDs(dst []byte, c *Chunk) []byte {
	dst = append(dst, idsFormat)
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
	return dst
}

// DecodeChunkIDs calls fn with each id AppendChunkIDs encoded in b, for a
// chunk whose first version is first, and its version, in version order.
func DecodeChunkIDs(b []byte, first int64, fn func(id uuid.UUID, version int64)) error {
	if len(b) == 0 || b[0] != idsFormat {
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
