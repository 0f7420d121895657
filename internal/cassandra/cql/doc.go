// Package cql holds what every part of the Cassandra store shares: the
// mapping of driver errors to the core's errors.
//
// A read (or an idempotent write the driver may retry) that fails because
// of the cluster's state is log.ErrUnavailable; a failure that is our bug
// (invalid CQL, schema drift) is ErrInternal. Conditional writes are never
// classified here: their callers settle an unknown outcome with a SERIAL
// read instead of guessing from the error.
package cql
