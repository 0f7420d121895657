// Package sequencer commits appends through the shard logs: for each shard
// this instance owns, one goroutine groups the queued appends, checks them
// against the stream heads it holds, and commits the group with one
// conditional write on the shard's log (shardlog), and answers the group
// at once; a second goroutine fills the stream partitions from each
// committed record behind it (streams), in log order, and a third answers
// the retry checks once their streams are written. Behind the fill, one
// goroutine per instance rewrites the streams' complete blocks as one row
// each (blocks.go, streams.Store.Compact). docs/design-write-path.md is
// the design.
//
// Invariants:
//
//   - A shard is committed only under the epoch this instance claimed in
//     the shards table and then wrote into the log segment it commits to
//     (the fence); a commit refused by the fence stops the shard.
//   - Before the first decision after a claim, every committed record is
//     filled (catch-up), so heads loaded from the stream partitions are
//     complete. A cached head is evicted only once every record touching
//     its stream is filled.
//   - Answers that depend on the head (conflicts, duplicates) are released
//     only after a conditional write or SERIAL read made after the decision
//     shows the shard still held: a paused ex-owner never answers from a
//     stale head.
//   - Leases decide who tries to claim a shard; a lease is judged expired
//     by watching it unchanged for longer than its TTL on this instance's
//     monotonic clock, so clock skew between instances cannot make one
//     steal a live shard.
//   - A binary never claims a shard whose row names a newer schema version
//     than its own, and shards are assigned only among the live instances
//     of the newest: once a newer binary has committed to a shard, an
//     older one never commits to it again (docs/data-model.md, "Schema
//     versions").
//   - Crash-only: a panic in a shard's goroutines (run, checker, filler),
//     the ownership tick or another loop of this package is not
//     recovered and ends the process. Those loops hold a shard's heads,
//     queue and tail, which a recover could leave half updated, and no
//     caller waits for them; once this instance's leases run out, others
//     take its shards under new epochs and catch up from the log
//     (docs/design-write-path.md, "Ownership and fencing").
package sequencer
