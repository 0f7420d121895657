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
	// It comes in a *CorruptError of kind CorruptSnapshot.
	ErrSnapshotCorrupt = errors.New("snapshot corrupt")
	// ErrDataCorrupt: stored data (a stream's row, a shard log record, a
	// snapshot) failed its integrity check and is not served. It comes in
	// a *CorruptError, which says which row.
	ErrDataCorrupt = errors.New("stored data corrupt")
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

// Kinds of stored data a CorruptError names (also the kind label of the
// HTTP layer's eventlog_data_corrupt_total).
const (
	CorruptChunk     = "chunk"      // a stream_events row holding one chunk
	CorruptRun       = "run"        // a stream_events row holding a run or block of chunks
	CorruptChunkIDs  = "chunk_ids"  // a stream_events row's ids column
	CorruptLogRecord = "log_record" // a shard_log row
	CorruptSnapshot  = "snapshot"   // a snapshots row
)

// CorruptError is stored data that failed its integrity check, with the
// key of its row: Stream, Bucket and the versions First..Last of a
// stream's row (a snapshot: Bucket -1, First = Last = its version); Shard,
// Segment and Seq of a shard log record. It matches ErrDataCorrupt and
// what Err matches.
type CorruptError struct {
	Kind        string
	Stream      StreamID
	Bucket      int64
	First, Last int64
	Shard       int
	Segment     int64
	Seq         int64
	Err         error
}

// Where names the corrupt row as an answer may: its key, no more.
func (e *CorruptError) Where() string {
	switch e.Kind {
	case CorruptLogRecord:
		return fmt.Sprintf("log record %d of shard %d", e.Seq, e.Shard)
	case CorruptSnapshot:
		return fmt.Sprintf("snapshot of stream %s at version %d", e.Stream, e.Last)
	case CorruptChunkIDs:
		return fmt.Sprintf("ids of stream %s versions %d..%d", e.Stream, e.First, e.Last)
	}
	return fmt.Sprintf("stream %s versions %d..%d", e.Stream, e.First, e.Last)
}

// Attrs is the row's key as slog key-value pairs (constant keys).
func (e *CorruptError) Attrs() []any {
	if e.Kind == CorruptLogRecord {
		return []any{"corrupt_kind", e.Kind, "shard", e.Shard, "segment", e.Segment, "seq", e.Seq}
	}
	return []any{"corrupt_kind", e.Kind, "stream", string(e.Stream), "bucket", e.Bucket, "first_version", e.First, "last_version", e.Last}
}

func (e *CorruptError) Error() string {
	switch e.Kind {
	case CorruptLogRecord:
		return fmt.Sprintf("shard %d segment %d seq %d: log record corrupt: %v", e.Shard, e.Segment, e.Seq, e.Err)
	case CorruptSnapshot:
		return fmt.Sprintf("stream %s snapshot %d: %v", e.Stream, e.Last, e.Err)
	}
	return fmt.Sprintf("stream %s bucket %d versions %d..%d: %s corrupt: %v", e.Stream, e.Bucket, e.First, e.Last, e.Kind, e.Err)
}

// Unwrap gives ErrDataCorrupt and the cause (record.ErrCorrupt, or
// ErrSnapshotCorrupt).
func (e *CorruptError) Unwrap() []error { return []error{ErrDataCorrupt, e.Err} }
