// Package log is eventlog's storage-independent core: streams, events,
// versions, snapshots, the Store interface every backend implements, and
// the errors those backends return.
//
// Invariants every Store must keep, for every stream, whatever the
// concurrency, retries or crashes:
//
//   - No lost acknowledgements: an event Append returned is readable, exactly
//     once, at the version it was returned with.
//   - No duplicates: an event id appears at most once in a stream.
//   - Gapless: versions run 1..head and nothing above the head is visible.
//   - Atomic appends: all events of one Append are present and contiguous, or
//     none are.
//   - Monotone time: an event's commit time is never earlier than the
//     previous version's, so "the versions committed by t" is a prefix
//     1..VersionAt(t) of the stream (time travel reads rely on it).
//   - Honest conflicts: *WrongExpectedVersionError only when the expected
//     version did not match; an outcome the store could not determine is
//     ErrOutcomeUnknown, never a success or a conflict.
//
// Consumer groups (groups.go, GroupStore) follow a feed with durable
// checkpoints: a group's partitions are the feed's shards, each held by one
// member at a time under a lease whose epoch fences acknowledgements from a
// member that lost it.
//
// The package imports no driver and no HTTP code;
// internal/cassandra/shardstore implements Store and internal/httpapi
// serves it.
package log
