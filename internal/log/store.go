package log

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrStop may be returned by a read callback to end the read early without
// an error.
var ErrStop = errors.New("stop reading")

// ReadRange selects versions From..To of a stream, both inclusive. To = 0
// means the head. Backward reads from To down to From. Limit = 0 means no
// limit. A non-zero UntilTime cuts the range at the last version committed
// at or before it (see Store.VersionAt and Cut): a read "as of" a moment.
type ReadRange struct {
	Stream    StreamID
	From      int64
	To        int64
	Limit     int
	Backward  bool
	UntilTime time.Time
	// Borrowed says that the read's fn keeps none of an event's byte
	// slices after it returns (it encodes or copies them), so the store
	// may reuse their memory for the events after it.
	Borrowed bool
}

// Cut applies UntilTime to r once the store has resolved it to version
// (Store.VersionAt): To becomes min(To, version) and UntilTime is cleared.
// ok is false when nothing of the range remains (no event committed by
// UntilTime, or all of them below From): the read is empty.
func (r ReadRange) Cut(version int64) (ReadRange, bool) {
	r.UntilTime = time.Time{}
	if version < max(r.From, 1) {
		return r, false
	}
	if r.To == 0 || r.To > version {
		r.To = version
	}
	return r, true
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Stream         StreamID
	Category       string
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Buckets        int   // time buckets (partitions) holding the stream
	CurrentBucket  int64 // the bucket that takes the next append
	LatestSnapshot int64 // 0 when there is none
}

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	Stream      StreamID
	Version     int64
	CreatedAt   time.Time
	Size        int // JSON state, bytes
	StoredSize  int // after compression, bytes
	Compression string
}

// Snapshot is a stored aggregate state.
type Snapshot struct {
	SnapshotInfo
	State json.RawMessage
}

// Store is a durable event log. All methods are safe for concurrent use,
// also from several processes sharing one backend.
type Store interface {
	// Append writes req.Events atomically at consecutive versions after
	// checking req.Expected. It returns *ValidationError for bad input,
	// *WrongExpectedVersionError, ErrIdempotencyConflict, ErrOutcomeUnknown
	// or ErrUnavailable. A retry of a stored append (same stream, same
	// client-chosen ids, same order and payload) returns the original
	// result with Duplicate set.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)

	// ReadStream calls fn for each event in r, in order, streaming: it never
	// holds more than a page of events. fn may return ErrStop. A read of a
	// stream without events returns ErrStreamNotFound (ErrStreamNotYet when
	// none was committed by r.UntilTime); an empty range of a stream that
	// has events returns nil. Both answers describe one moment of the read:
	// a separate Info after an empty read races with the stream's first
	// append. A range with UntilTime is read as
	// r.Cut(VersionAt(r.UntilTime)).
	ReadStream(ctx context.Context, r ReadRange, fn func(*RecordedEvent) error) error

	// VersionAt returns the last version of stream committed at or before
	// t, or 0 when there is none (t before the first event, or a stream
	// without events). Commit times never decrease along a stream's
	// versions, so versions 1..VersionAt(t) are exactly the events
	// committed by t. Errors: *ValidationError, ErrUnavailable.
	VersionAt(ctx context.Context, stream StreamID, t time.Time) (int64, error)

	// Info describes a stream, or returns ErrStreamNotFound.
	Info(ctx context.Context, stream StreamID) (StreamInfo, error)

	// HeadVersion returns the stream's version (its head), or
	// ErrStreamNotFound, as Info would, but reads no snapshot: what a
	// HEAD of a replay or a state load checks (CheckState).
	HeadVersion(ctx context.Context, stream StreamID) (int64, error)

	// PutSnapshot stores state (JSON) as the aggregate state at version.
	// The version must be 1..head (*ValidationError otherwise).
	// ErrOutcomeUnknown: the write was sent and may be stored; putting
	// the same state again is safe.
	PutSnapshot(ctx context.Context, stream StreamID, version int64, state json.RawMessage) (SnapshotInfo, error)

	// LatestSnapshot returns the newest snapshot at or below maxVersion
	// (0: any), or ErrSnapshotNotFound. A snapshot that fails its integrity
	// check is ErrSnapshotCorrupt, never served.
	LatestSnapshot(ctx context.Context, stream StreamID, maxVersion int64) (Snapshot, error)

	// Ready reports whether the store can serve (reachable, schema current).
	Ready(ctx context.Context) error
}
