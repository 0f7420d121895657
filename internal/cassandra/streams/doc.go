// Package streams reads and writes the stream partitions (schema/schema.cql:
// stream_buckets, stream_events, stream_ids): every stream's events in
// time-bucketed partitions, filled from the shard logs.
//
// Invariants: a chunk row is written only for a committed log record, and
// holds exactly what the record holds (Fill is deterministic), so writing
// it again — a catch-up, or a paused ex-owner waking up — changes nothing.
// A bucket's index row is written before its first chunk, so a reader that
// finds a chunk can always locate it. Chunks of one stream are written in
// log order, so readers never see a later version without the earlier ones.
// A client id is found either in stream_ids or, for a chunk that ends at or
// below LowVersions, in that chunk row's ids column (the body, for a row
// written before the column): IDs and LookupIDs read both.
package streams
