package cassandra

import (
	"context"
	"errors"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

func TestCASErrorClassification(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"WriteTimeout", &gocql.RequestErrWriteTimeout{WriteType: "CAS"}, log.ErrOutcomeUnknown},
		{"CASWriteUnknown", &gocql.RequestErrCASWriteUnknown{}, log.ErrOutcomeUnknown},
		{"NoResponse", gocql.ErrTimeoutNoResponse, log.ErrOutcomeUnknown},
		{"ConnectionClosed", gocql.ErrConnectionClosed, log.ErrOutcomeUnknown},
		{"Deadline", context.DeadlineExceeded, log.ErrOutcomeUnknown},
		{"ReadTimeoutInPaxos", &gocql.RequestErrReadTimeout{}, log.ErrOutcomeUnknown},
		// paxos_variant v1 raises both after a quorum may have accepted.
		{"UnavailableAfterPaxos", &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}, log.ErrOutcomeUnknown},
		{"OverloadedAfterPaxos", &gocql.RequestErrOverloaded{}, log.ErrOutcomeUnknown},
		{"Bootstrapping", &gocql.RequestErrBootstrapping{}, log.ErrUnavailable},
		{"DriverNoHosts", gocql.ErrUnavailable, log.ErrUnavailable},
		{"NoConnections", gocql.ErrNoConnections, log.ErrUnavailable},
		{"TooManyStatements", gocql.ErrTooManyStmts, log.ErrUnavailable},
		{"Invalid", &gocql.RequestErrInvalid{}, errInternal},
		{"Marshal", gocql.MarshalError("bad"), errInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := casErr("append", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("casErr(%v) = %v, want %v", c.err, got, c.want)
			}
			for _, other := range []error{log.ErrOutcomeUnknown, log.ErrUnavailable, errInternal} {
				if other != c.want && errors.Is(got, other) {
					t.Fatalf("casErr(%v) is also %v", c.err, other)
				}
			}
		})
	}
	if casErr("x", nil) != nil || readErr("x", nil) != nil {
		t.Fatal("nil error classified")
	}
	if !errors.Is(readErr("find event ids", context.Canceled), log.ErrUnavailable) {
		t.Fatal("a cancelled read (by the driver or the caller) is not unavailable")
	}
	if !errors.Is(readErr("read", &gocql.RequestErrReadTimeout{}), log.ErrUnavailable) {
		t.Fatal("read timeout is not unavailable")
	}
	if !errors.Is(readErr("read", &gocql.RequestErrSyntax{}), errInternal) {
		t.Fatal("syntax error is not internal")
	}
}
