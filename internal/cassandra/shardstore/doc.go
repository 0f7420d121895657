// Package shardstore is the log.Store of the shard-log write path
// (docs/design-write-path.md): appends go through the sequencer (one
// conditional write per commit group per shard), stream reads come from
// the stream partitions it fills, and the feeds are read straight from the
// shard logs (package feeds; log.FeedStore, with position tokens bound to
// their feed). It assembles the parts — shardlog, streams, sequencer,
// feeds — over one session.
//
// The server serves it with --write-path shards. It is being built to
// replace the per-stream store of package cassandra; consumer groups are
// not served on it yet.
package shardstore
