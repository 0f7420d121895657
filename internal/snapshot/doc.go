// Package snapshot encodes aggregate-state snapshots for storage in Cassandra
// blobs. A snapshot is the application's JSON for an aggregate at some stream
// version; the codec treats it as opaque bytes (any bytes, including none),
// compresses it with zstd and frames it so that a read detects corruption and
// never allocates more than the reader's limit, whatever the blob claims.
//
// # Format (version 1; stable: stored blobs must decode forever)
//
//	"ELS" 0x01          4 bytes: magic and format version
//	length              uvarint, minimal encoding: uncompressed state length
//	crc                 4 bytes little-endian: CRC-32C (Castagnoli) of the state
//	frame               one zstd frame (RFC 8878), single segment, whose
//	                    Frame_Content_Size equals length; no dictionary, no
//	                    zstd content checksum (crc covers it); nothing follows
//
// Decode checks, in order: magic and version, that the header's length and
// the frame's content size agree (so a damaged length byte reads as
// ErrCorrupt, not ErrTooLarge), that length is within the codec's limit
// (ErrTooLarge, before any decompression), then decompresses into exactly
// length bytes and verifies the checksum. Any other change of layout gets a
// new version byte, and decoders keep reading version 1.
//
// # Design and limits
//
// There is no trained dictionary: it would help tiny snapshots, but every blob
// would then depend on a dictionary stored and versioned forever, and
// aggregate snapshots are large enough (kilobytes and up) for zstd to find
// their repetition within the frame; on realistic order-aggregate JSON the
// ratio is about 7.7x at 100 KB and 9x at 5 MB (see TestCompressionRatio).
// Cassandra rejects a mutation larger than half its commit log segment
// (16 MiB by default), so a stored blob, after compression and with the rest
// of its row, must stay under 16 MiB; Encode does not enforce this, the store
// checks len(blob) before writing. NewCodec's maxDecoded bounds the state a
// reader accepts and the decoder's memory.
package snapshot
