// Package shardstore is the log.Store of the shard-log write path
// (docs/design-write-path.md): appends go through the sequencer (one
// conditional write per commit group per shard), reads come from the
// stream partitions it fills. It assembles the parts — shardlog, streams,
// sequencer — over one session.
//
// It is being built to replace the per-stream store of package cassandra;
// the server does not serve it yet.
package shardstore
