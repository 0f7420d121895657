package cql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// TestCASErr: a conditional write's error is "not applied"
// (log.ErrUnavailable) only when it proves no replica saw the proposal;
// Unavailable and Overloaded from the coordinator are not such proof
// (paxos_variant v1 raises both after a quorum may have accepted), so they
// are log.ErrOutcomeUnknown, as every timeout is.
func TestCASErr(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"WriteTimeout", &gocql.RequestErrWriteTimeout{WriteType: "CAS"}, log.ErrOutcomeUnknown},
		{"CASWriteUnknown", &gocql.RequestErrCASWriteUnknown{}, log.ErrOutcomeUnknown},
		{"NoResponse", gocql.ErrTimeoutNoResponse, log.ErrOutcomeUnknown},
		{"ConnectionClosed", gocql.ErrConnectionClosed, log.ErrOutcomeUnknown},
		{"HeartbeatFailed", errors.New("gocql: heartbeat failed"), log.ErrOutcomeUnknown},
		{"ConnectionEOF", fmt.Errorf("gocql: failed to read uncompressed frame, err: %w", io.EOF), log.ErrOutcomeUnknown},
		{"Deadline", context.DeadlineExceeded, log.ErrOutcomeUnknown},
		{"ReadTimeoutInPaxos", &gocql.RequestErrReadTimeout{}, log.ErrOutcomeUnknown},
		{"UnavailableAfterPaxos", &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}, log.ErrOutcomeUnknown},
		{"OverloadedAfterPaxos", &gocql.RequestErrOverloaded{}, log.ErrOutcomeUnknown},
		{"Bootstrapping", &gocql.RequestErrBootstrapping{}, log.ErrUnavailable},
		{"DriverNoHosts", gocql.ErrUnavailable, log.ErrUnavailable},
		{"NoConnections", gocql.ErrNoConnections, log.ErrUnavailable},
		{"SessionClosed", gocql.ErrSessionClosed, log.ErrUnavailable},
		{"TooManyStatements", gocql.ErrTooManyStmts, log.ErrUnavailable},
		{"Invalid", &gocql.RequestErrInvalid{}, ErrInternal},
		{"Syntax", &gocql.RequestErrSyntax{}, ErrInternal},
		{"Marshal", gocql.MarshalError("bad"), ErrInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := CASErr("append", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("CASErr(%v) = %v, want %v", c.err, got, c.want)
			}
			for _, other := range []error{log.ErrOutcomeUnknown, log.ErrUnavailable, ErrInternal} {
				if other != c.want && errors.Is(got, other) {
					t.Fatalf("CASErr(%v) is also %v", c.err, other)
				}
			}
		})
	}
	if CASErr("x", nil) != nil || ReadErr("x", nil) != nil {
		t.Fatal("nil error classified")
	}
}

// TestReadErr: a read's failure from the cluster's state is
// log.ErrUnavailable (nothing was written: retry), a bad statement
// ErrInternal.
func TestReadErr(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"Canceled", context.Canceled, log.ErrUnavailable},
		{"Deadline", context.DeadlineExceeded, log.ErrUnavailable},
		{"ReadTimeout", &gocql.RequestErrReadTimeout{}, log.ErrUnavailable},
		{"Unavailable", &gocql.RequestErrUnavailable{}, log.ErrUnavailable},
		{"NoConnections", gocql.ErrNoConnections, log.ErrUnavailable},
		// The driver's own texts: its heartbeat giving up on a connection
		// (conn.go heartBeat), a connection the node closed (frame.go
		// readUncompressedSegment, wrapping io.EOF).
		{"HeartbeatFailed", errors.New("gocql: heartbeat failed"), log.ErrUnavailable},
		{"ConnectionEOF", fmt.Errorf("gocql: failed to read uncompressed frame, err: %w", io.EOF), log.ErrUnavailable},
		{"ConnectionUnexpectedEOF", fmt.Errorf("gocql: failed to read uncompressed frame payload, err: %w", io.ErrUnexpectedEOF), log.ErrUnavailable},
		{"Syntax", &gocql.RequestErrSyntax{}, ErrInternal},
		{"Invalid", &gocql.RequestErrInvalid{}, ErrInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ReadErr("read", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("ReadErr(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// TestWriteErr: a plain write that timed out may be stored (outcome
// unknown); one the coordinator refused as unavailable, or that found no
// connection, was not.
func TestWriteErr(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"WriteTimeout", &gocql.RequestErrWriteTimeout{WriteType: "SIMPLE"}, log.ErrOutcomeUnknown},
		{"NoResponse", gocql.ErrTimeoutNoResponse, log.ErrOutcomeUnknown},
		{"Deadline", context.DeadlineExceeded, log.ErrOutcomeUnknown},
		{"HeartbeatFailed", errors.New("gocql: heartbeat failed"), log.ErrOutcomeUnknown},
		{"Unavailable", &gocql.RequestErrUnavailable{Consistency: gocql.Quorum, Required: 2, Alive: 1}, log.ErrUnavailable},
		{"NoConnections", gocql.ErrNoConnections, log.ErrUnavailable},
		{"Invalid", &gocql.RequestErrInvalid{}, ErrInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := WriteErr("write", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("WriteErr(%v) = %v, want %v", c.err, got, c.want)
			}
			for _, other := range []error{log.ErrOutcomeUnknown, log.ErrUnavailable, ErrInternal} {
				if other != c.want && errors.Is(got, other) {
					t.Fatalf("WriteErr(%v) is also %v", c.err, other)
				}
			}
		})
	}
}
