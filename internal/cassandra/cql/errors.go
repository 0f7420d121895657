package cql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// ErrInternal marks driver errors that are our bug (invalid CQL, schema
// drift), not the cluster's state.
var ErrInternal = errors.New("internal storage error")

// ReadErr turns a driver error on a read (or an idempotent write) into a
// core error, prefixed with op.
func ReadErr(op string, err error) error {
	if err == nil {
		return nil
	}
	// context.Canceled also comes from the driver itself (a prepare on a
	// connection it closes), not only from a caller who left: either way
	// nothing was written.
	if IsStorageError(err) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w: %v", op, log.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %v", op, ErrInternal, err)
}

// heartbeatFailed is the text of the error gocql gives every request in
// flight on a connection whose heartbeats went unanswered (it then closes
// the connection): a plain error, with no value to compare it with.
const heartbeatFailed = "gocql: heartbeat failed"

// WriteErr turns a driver error on a plain (not conditional) write that
// the driver may retry, one whose answer reaches a client, into a core
// error, prefixed with op: ErrUnavailable when nothing can have been
// written (no connection, or the coordinator refused it: Unavailable is
// raised before any replica is sent the write), ErrInternal for a bad
// statement, and ErrOutcomeUnknown otherwise: a write that timed out may
// be stored on some replicas, which read repair and hints spread.
func WriteErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var unavailable *gocql.RequestErrUnavailable
	if errors.As(err, &unavailable) {
		return fmt.Errorf("%s: %w: %v", op, log.ErrUnavailable, err)
	}
	return CASErr(op, err)
}

// IsStorageError reports errors that come from the cluster's state
// (timeouts, unavailable replicas, lost connections) rather than from a bad
// statement. A lost connection is also an io.EOF (the node closed it: it
// stopped or restarted, wrapped by the driver's frame reader) or the
// driver's heartbeat failure (no answer for six heartbeats: a network
// partition, a node paused); with no other host to retry on (one node, or
// all of them out of reach) the request ends with that error, which was
// taken for our bug and answered 500.
func IsStorageError(err error) bool {
	var (
		reqErr  gocql.RequestError
		netErr  interface{ Timeout() bool }
		syntax  *gocql.RequestErrSyntax
		invalid *gocql.RequestErrInvalid
		config  *gocql.RequestErrConfig
	)
	if errors.As(err, &syntax) || errors.As(err, &invalid) || errors.As(err, &config) {
		return false
	}
	if errors.As(err, &reqErr) {
		switch reqErr.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeConfig,
			gocql.ErrCodeAlreadyExists, gocql.ErrCodeUnauthorized, gocql.ErrCodeCredentials:
			return false
		}
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, gocql.ErrTimeoutNoResponse) ||
		errors.Is(err, gocql.ErrConnectionClosed) ||
		errors.Is(err, gocql.ErrNoConnections) ||
		errors.Is(err, gocql.ErrSessionClosed) ||
		errors.Is(err, gocql.ErrUnavailable) ||
		errors.Is(err, gocql.ErrNoStreams) ||
		errors.Is(err, gocql.ErrTooManyTimeouts) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), heartbeatFailed) ||
		errors.As(err, &netErr)
}

// CASErr turns a driver error on a conditional write into a core error,
// prefixed with op: ErrUnavailable when no replica can have seen the
// proposal, ErrInternal for a statement refused before execution, and
// ErrOutcomeUnknown otherwise (a timed-out proposal may still be completed
// by a later round: the caller settles it with a SERIAL read, never by
// resending blindly).
func CASErr(op string, err error) error {
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
		return fmt.Errorf("%s: %w: %v", op, log.ErrUnavailable, err)
	case errors.As(err, &invalid), errors.As(err, &syntax), errors.As(err, &marshal):
		return fmt.Errorf("%s: %w: %v", op, ErrInternal, err)
	}
	return fmt.Errorf("%s: %w: %v", op, log.ErrOutcomeUnknown, err)
}
