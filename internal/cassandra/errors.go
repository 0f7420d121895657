package cassandra

import "errors"

// ErrSchemaMismatch: the keyspace's schema is not the version this binary
// knows (run `server migrate`, or upgrade the binary), or the keyspace has
// the layout of an earlier build that this one no longer reads
// (ErrOldLayout).
var ErrSchemaMismatch = errors.New("schema version mismatch")

// ErrOldLayout: the keyspace was created with the per-stream layout of
// builds before the shard logs (tables events, feed_events, ...). No
// release shipped it, so it is not migrated: the server refuses it and
// says to create a new keyspace. It wraps ErrSchemaMismatch.
var ErrOldLayout = errors.Join(ErrSchemaMismatch, errors.New("keyspace has the per-stream layout of an earlier build"))

// ErrSchemaNewer: the keyspace holds a migration this binary does not
// carry (a newer binary migrated it): upgrade the binary; migrating with
// this one cannot help. It wraps ErrSchemaMismatch.
var ErrSchemaNewer = errors.Join(ErrSchemaMismatch, errors.New("keyspace migrated by a newer binary"))

// ErrPaxosVariant: a Cassandra node does not run paxos_variant v2, which
// the conditional writes' outcomes depend on, or its setting cannot be
// read (checkPaxos).
var ErrPaxosVariant = errors.New("eventlog needs every Cassandra node on paxos_variant v2")
