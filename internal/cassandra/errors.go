package cassandra

import (
	"errors"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// ErrSchemaMismatch: the keyspace's schema is not the version this binary
// knows (run `server migrate`, or upgrade the binary).
var ErrSchemaMismatch = errors.New("schema version mismatch")

// ErrPaxosVariant: a Cassandra node does not run paxos_variant v2, which
// the conditional writes' outcomes depend on, or its setting cannot be
// read (checkPaxos).
var ErrPaxosVariant = errors.New("eventlog needs every Cassandra node on paxos_variant v2")

// errInternal marks driver errors that are our bug (invalid CQL, schema
// drift), not the cluster's state.
var errInternal = cql.ErrInternal

// readErr turns a driver error on a read (or an idempotent write, which
// the driver may retry) into a core error (cql.ReadErr).
func readErr(op string, err error) error { return cql.ReadErr(op, err) }

// casErr turns a driver error on a conditional write into a core error.
// Only errors that prove the write was not applied become ErrUnavailable;
// every timeout, lost connection or partial Paxos round is
// ErrOutcomeUnknown, because the proposal may still be completed later.
//
// Unavailable and Overloaded answers are not such proof: with
// paxos_variant v1 a coordinator raises both after a quorum may have
// accepted the proposal (the commit or a later phase found too few
// replicas), and a later Paxos round then completes the write. Only
// failures of the client side (no connection, a closed session, no host)
// and a coordinator still bootstrapping, which refuses every request
// before it runs, prove nothing was sent to Paxos.
func casErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		booting *gocql.RequestErrBootstrapping
		invalid *gocql.RequestErrInvalid
		syntax  *gocql.RequestErrSyntax
		marshal gocql.MarshalError
	)
	switch {
	case errors.As(err, &booting),
		errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrSessionClosed),
		errors.Is(err, gocql.ErrUnavailable), errors.Is(err, gocql.ErrTooManyStmts):
		// Rejected before any replica saw a proposal.
		return fmt.Errorf("%s: %w: %v", op, log.ErrUnavailable, err)
	case errors.As(err, &invalid), errors.As(err, &syntax), errors.As(err, &marshal):
		// Refused before execution: our bug, and certainly not applied.
		return fmt.Errorf("%s: %w: %v", op, errInternal, err)
	}
	return fmt.Errorf("%s: %w: %v", op, log.ErrOutcomeUnknown, err)
}

// isStorageError reports errors that come from the cluster's state
// (cql.IsStorageError).
func isStorageError(err error) bool { return cql.IsStorageError(err) }
