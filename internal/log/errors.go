package log

import (
	"errors"
	"fmt"
)

var (
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrStreamNotYet: no event of the stream was committed by the moment
	// asked about (a time travel read): the stream did not exist yet, or
	// never did. It matches ErrStreamNotFound too.
	ErrStreamNotYet = fmt.Errorf("%w at that moment", ErrStreamNotFound)
	// ErrSnapshotNotFound: no snapshot at or below the requested version.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrIdempotencyConflict: the append repeats only some stored event ids,
	// or reuses a stored id with a different payload.
	ErrIdempotencyConflict = errors.New("idempotency conflict")
	// ErrOutcomeUnknown: a write was sent but its result could not be
	// determined (timeout mid-Paxos). It may or may not have been applied;
	// retrying the same append with the same event ids is safe.
	ErrOutcomeUnknown = errors.New("write outcome unknown")
	// ErrUnavailable: the store could not be reached or refused the request
	// before anything was written.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSnapshotCorrupt: a stored snapshot failed its integrity check.
	ErrSnapshotCorrupt = errors.New("snapshot corrupt")
	// ErrNotOwner: an append or flush forwarded to this instance is for a
	// shard it does not own (any more); nothing was written. It matches
	// ErrUnavailable; the forwarding instance looks for the new owner.
	ErrNotOwner = fmt.Errorf("%w: the stream's shard is owned by another instance", ErrUnavailable)
	// ErrOwnerUnreachable: an append or flush forwarded to the instance
	// that owns the stream's shard could not be sent to it (it refused the
	// connection: stopping, or gone); nothing was written. It matches
	// ErrUnavailable; the forwarding instance asks the owner it reads next.
	ErrOwnerUnreachable = fmt.Errorf("%w: the stream's shard owner could not be reached", ErrUnavailable)
)

// WrongExpectedVersionError reports an optimistic-concurrency mismatch.
type WrongExpectedVersionError struct {
	Stream   StreamID
	Expected ExpectedVersion
	Current  int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("stream %s: expected version %s, current version %d", e.Stream, e.Expected, e.Current)
}

// ValidationError is bad input, rejected before anything is written. Code is
// the stable problem code the HTTP layer reports.
type ValidationError struct {
	Code    string // e.g. CodeInvalidEvent
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// Stable problem codes for validation failures.
const (
	CodeInvalidStreamID     = "invalid_stream_id"
	CodeInvalidEvent        = "invalid_event"
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidVersion      = "invalid_version"
	CodeTooManyEvents       = "too_many_events"
	CodeEventTooLarge       = "event_too_large"
	CodeSnapshotTooLarge    = "snapshot_too_large"
	CodeSnapshotVersion     = "invalid_snapshot_version"
	CodeInvalidExpectedVers = "invalid_expected_version"
	CodeInvalidFeed         = "invalid_feed"
	CodeInvalidPosition     = "invalid_position"
)

func invalid(code, format string, args ...any) error {
	return &ValidationError{Code: code, Message: fmt.Sprintf(format, args...)}
}
