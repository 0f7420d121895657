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
// limit.
type ReadRange struct {
	Stream   StreamID
	From     int64
	To       int64
	Limit    int
	Backward bool
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
	// holds more than a page of events. fn may return ErrStop. A stream
	// without events reads as empty (use Info to tell it apart).
	ReadStream(ctx context.Context, r ReadRange, fn func(*RecordedEvent) error) error

	// Info describes a stream, or returns ErrStreamNotFound.
	Info(ctx context.Context, stream StreamID) (StreamInfo, error)

	// PutSnapshot stores state (JSON) as the aggregate state at version.
	// The version must be 1..head (*ValidationError otherwise).
	PutSnapshot(ctx context.Context, stream StreamID, version int64, state json.RawMessage) (SnapshotInfo, error)

	// LatestSnapshot returns the newest snapshot at or below maxVersion
	// (0: any), or ErrSnapshotNotFound. A snapshot that fails its integrity
	// check is ErrSnapshotCorrupt, never served.
	LatestSnapshot(ctx context.Context, stream StreamID, maxVersion int64) (Snapshot, error)

	// Ready reports whether the store can serve (reachable, schema current).
	Ready(ctx context.Context) error
}
