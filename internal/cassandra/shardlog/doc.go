// Package shardlog reads and writes the shard logs (schema/schema.cql:
// shard_log): the commit of every append, in one log per shard, split
// into segments.
//
// Invariants the writers here keep, which the sequencer and the feed
// readers rely on:
//
//   - A commit is one conditional batch on the shard's current segment,
//     IF epoch = E AND last_seq = N, that sets last_seq = N+1 and inserts
//     row N+1. So a log has no holes (seqs are consecutive across
//     segments), and only the holder of the segment's current epoch can
//     commit (fencing).
//   - Segments have a fixed size R (keyspace_config): seq s is in segment
//     (s-1)/R, so a position is just a seq. A segment's epoch only grows
//     (Fence); the next segment is opened (IF epoch = null, fenced at
//     once) by the first commit past a full one, or by a new owner's
//     takeover that finds it missing (a losing opener reads it and fences
//     it), so a new owner fences by walking from a known segment to the
//     first one that is not full.
//   - Nothing here retries a conditional write: a commit whose outcome is
//     unknown is settled by Settle, a SERIAL read.
package shardlog
