// Package streams reads and writes the stream partitions (schema/schema.cql:
// stream_buckets, stream_events, stream_ids): every stream's events in
// time-bucketed partitions, filled from the shard logs.
//
// Invariants: a row holds one chunk, or a run of a stream's consecutive
// chunks (Runs), and is written only for committed log records; every
// chunk is what its record holds (record.Chunks is deterministic), so a
// row written again — a retry, a catch-up, a paused ex-owner waking up —
// holds the same chunks whole, perhaps grouped otherwise. Rows at one key
// end with the same chunk, and the one holding more wins (its write
// timestamp), so no chunk written is lost; readers send each chunk once,
// in version order (rowReader). A bucket's index row is written before its
// first chunk, so a reader that finds a chunk can always locate it. Chunks
// of one stream are written in log order, so readers never see a later
// version without the earlier ones.
//
// Compact rewrites a stream's complete blocks (chunks starting in one
// span of BlockEvents versions) as one run row each and deletes, in the
// same single-partition mutation, only rows wholly inside the block: a
// block's run is the same whoever writes it, never at a key a deletion
// covers, and a deleted row's chunks are all in it, so no chunk ever
// loses its last row (compact.go argues each step).
// A client id is found either in stream_ids or, for a chunk that ends at or
// below LowVersions, in its partition's static low_ids (a chunk that
// crosses LowVersions has both: low_ids for its ids at or below it; in a
// partition opened before migration 0005, also in the chunk rows' ids
// columns or bodies): IDs and LookupIDs read both.
package streams
