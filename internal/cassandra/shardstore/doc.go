// Package shardstore is the server's log.Store on Cassandra
// (docs/design-write-path.md): appends go through the sequencer (one
// conditional write per commit group per shard), stream reads come from
// the stream partitions it fills, the feeds are read straight from the
// shard logs (package feeds; log.FeedStore, with position tokens bound to
// their feed), and consumer groups follow them (package groups). It
// assembles the parts — shardlog, streams, sequencer, feeds, groups,
// snapshots — over one session, after the keyspace checks of package
// cassandra (CheckKeyspace).
package shardstore
