// Package partition holds how streams map to Cassandra partitions, free of
// any driver: time buckets within a stream, and the shard a stream's
// commits go through.
//
// A stream's events live in buckets numbered 0, 1, 2, … Bucket n+1 starts
// at the version after the last version of bucket n, so the buckets of a
// stream tile 1..head without gaps or overlap. A bucket stops taking
// appends (is sealed) when its time window, measured from when it was
// opened, has passed, or when one more append would take it over its row
// cap. Buckets are numbered rather than named by wall-clock time so that
// writers whose clocks disagree still agree on which bucket holds a
// version: a clock only decides when a bucket seals.
//
// Streams map to a fixed number of shards (ShardOf); each shard's commits
// are one log, committed by one owner at a time (docs/design-write-path.md).
package partition
