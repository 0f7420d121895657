// Package cassandra holds what every part of the Cassandra store shares:
// the connection options (Options, with their defaults and validation),
// the one place sessions are configured (NewClusterConfig, Connect), the
// embedded schema's migrations with their checksums (Migrate), and the
// checks made before a keyspace is served (CheckKeyspace: the schema
// version this binary knows, no LOCAL_* levels across data centres,
// paxos_variant v2 on every node).
//
// The store itself is built from parts with one job each, in the packages
// below this one: shardstore (log.Store), sequencer (shard ownership and
// group commit), shardlog (the log partitions), streams (the time-bucketed
// stream partitions), feeds, groups, snapshots, keystore (API keys), and
// cql (driver errors as domain errors). docs/design-write-path.md is the
// design; schema/schema.cql the tables.
package cassandra
