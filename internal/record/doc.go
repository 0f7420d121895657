// Package record holds the binary encodings of what the shard logs and the
// stream partitions store: a log record (one commit group: every append it
// committed, with the stream, bucket and first version each was given) and
// a chunk (one stream's consecutive appends of one commit, in one bucket),
// stored as a row of its own or as one part of a run (several chunks of a
// stream from consecutive commits, in one row).
//
// Both are written once and never changed: a chunk is derived from a log
// record by Chunks, deterministically, so whoever materialises a committed
// record — its owner, a later owner catching up, or a paused ex-owner that
// wakes up — writes the same bytes.
//
// Every encoding written checks itself: a compressed one with its frame's
// checksum (zstd's, or formatS2's CRC-32C), a plain one with a CRC-32C of
// its bytes (formatChecked), a run with one over the whole row
// (formatRunChecked; its parts' bodies go in without their own), so a
// byte changed anywhere in a stored encoding (a row's record column) is
// ErrCorrupt, never another event. The row's other columns are not
// covered: a chunk row's versions are checked against the events its body
// holds, but its time (the commit time of a row of one chunk, and of a
// log row) and its client ids (AppendChunkIDs) are taken as stored. A run's checksum and framing are checked before any of its parts
// is handed on (DecodeRun): a reader that sends parts as it decodes them
// sends none of a corrupt run. Encodings of before the checksums (format,
// formatRun) still decode, unchecked.
//
// Decoding never trusts its input: lengths are checked against what is
// left, counts against MaxEvents, and a compressed encoding's declared
// plain length against the one its frame records before a buffer of that
// length is allocated, so a corrupt row is an error, never a panic or a
// huge allocation.
package record
