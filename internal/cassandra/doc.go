// Package cassandra implements log.Store on Apache Cassandra.
//
// Data model (schema/schema.cql; reasons in docs/data-model.md):
//
//   - events: one partition per (stream, bucket). Static columns hold the
//     bucket's head (first_version, last_version, last_time, opened_at,
//     sealed). Every append is one conditional batch confined to that
//     partition: IF last_version = <head> AND sealed = false, plus the event
//     rows. The condition and the rows it guards share a partition, so the
//     check and the write are one atomic, isolated Paxos operation.
//   - stream_buckets: the index of a stream's buckets (bucket → first
//     version), one small partition per stream, read to locate a version
//     range and the head.
//   - event_ids: client-chosen event ids with the head each append attempt
//     conditioned on, kept for the idempotency window, to recognise retries
//     of "any" appends.
//   - snapshots: zstd-compressed aggregate states, newest first.
//   - consumer_groups, group_members, group_partitions: consumer groups
//     (groups.go, docs/consumer-groups.md); each partition's lease and
//     checkpoint change only by conditional writes on its own row.
//
// A bucket is sealed by its own conditional write (IF last_version = N) once
// its time window has passed by the writer's clock or it would exceed its
// row cap; the next bucket starts at N+1 and is created by a conditional
// write that requires it not to exist. Clocks only decide when a bucket
// seals, never which versions it holds, so skewed writers cannot put a
// version in two buckets or leave a gap.
package cassandra
