// Package cql holds what every part of the Cassandra store shares: the
// mapping of driver errors to the core's errors.
//
// A read (or an idempotent write the driver may retry) that fails because
// of the cluster's state is log.ErrUnavailable; a failure that is our bug
// (invalid CQL, schema drift) is ErrInternal. CASErr classifies a
// conditional write's error for callers that settle it themselves
// (consumer groups): ErrUnavailable only when no replica can have seen the
// proposal, else ErrOutcomeUnknown, which the caller settles with a SERIAL
// read instead of resending. WriteErr classifies a plain write whose
// answer a client gets (a snapshot put): ErrOutcomeUnknown when it may be
// stored. The shard log's commit classifies nothing:
// it settles every error (shardlog.Settle).
package cql
