package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// ExpectedVersion is the optimistic-concurrency condition of an append:
// an exact version N ≥ 0 (0 means the stream must not exist yet), or one of
// Any, StreamExists.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// StreamExists requires the stream to have at least one event.
	StreamExists ExpectedVersion = -2
	// NoStream requires the stream to have no events.
	NoStream ExpectedVersion = 0
)

func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case StreamExists:
		return "exists"
	case NoStream:
		return "no_stream"
	}
	return strconv.FormatInt(int64(e), 10)
}

// Exact reports whether e names one version.
func (e ExpectedVersion) Exact() bool { return e >= 0 }

// Matches reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Matches(current int64) bool {
	switch {
	case e == Any:
		return true
	case e == StreamExists:
		return current > 0
	default:
		return int64(e) == current
	}
}

// MarshalJSON writes the integer or the keyword.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	if e.Exact() {
		return strconv.AppendInt(nil, int64(e), 10), nil
	}
	return json.Marshal(e.String())
}

// UnmarshalJSON accepts an integer ≥ 0 or "any", "no_stream", "exists".
func (e *ExpectedVersion) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "any":
			*e = Any
		case "no_stream":
			*e = NoStream
		case "exists":
			*e = StreamExists
		default:
			return invalid(CodeInvalidExpectedVers, `expected_version must be an integer >= 0, "any", "no_stream" or "exists"`)
		}
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return invalid(CodeInvalidExpectedVers, `expected_version must be an integer >= 0, "any", "no_stream" or "exists"`)
	}
	*e = ExpectedVersion(n)
	return nil
}

// ProposedEvent is an event to append.
type ProposedEvent struct {
	ID       uuid.UUID
	Type     string
	Data     json.RawMessage // any JSON value, stored as given
	Metadata json.RawMessage // a JSON object, or nil
	// ClientID is true when the client chose ID. Only client-chosen ids can
	// identify a retry, so only they are recorded for idempotency.
	ClientID bool
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	Stream   StreamID
	ID       uuid.UUID
	Type     string
	Version  int64
	Time     time.Time
	Data     json.RawMessage
	Metadata json.RawMessage
}

// SamePayload reports whether r stores exactly p (same id, type, data and
// metadata bytes).
func (r *RecordedEvent) SamePayload(p *ProposedEvent) bool {
	return r.ID == p.ID && r.Type == p.Type && bytes.Equal(r.Data, p.Data) && bytes.Equal(r.Metadata, p.Metadata)
}

// AppendRequest appends Events atomically at consecutive versions.
type AppendRequest struct {
	Stream   StreamID
	Expected ExpectedVersion
	Events   []ProposedEvent

	validated bool // ids filled in: a second Validate must not take them for the client's
}

// AppendedEvent is one event's id and version in an AppendResult.
type AppendedEvent struct {
	ID      uuid.UUID `json:"id"`
	Version int64     `json:"version"`
}

// AppendResult describes a committed append.
type AppendResult struct {
	Stream       StreamID
	FirstVersion int64
	LastVersion  int64
	Events       []AppendedEvent
	// Time is the commit time of the events: their feed position's time.
	// Once a feed's watermark (FeedPage.CompleteUpTo) reaches it, they are
	// in every feed they belong to.
	Time time.Time
	// Duplicate is true when the append had already been stored by an
	// earlier request with the same event ids: nothing was written and the
	// versions are the original ones.
	Duplicate bool
}

// Limits bound what one request may carry.
type Limits struct {
	MaxEventsPerAppend int // events in one append
	MaxEventBytes      int // data + metadata of one event
	MaxSnapshotBytes   int // a snapshot's JSON state, before compression
}

// DefaultLimits are the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{MaxEventsPerAppend: 1000, MaxEventBytes: 1 << 20, MaxSnapshotBytes: 8 << 20}
}

// Validate checks r against l, compacts the JSON and fills in missing event
// ids with UUIDv7. It changes nothing but r and may run more than once.
func (r *AppendRequest) Validate(l Limits) error {
	if _, err := ParseStreamID(string(r.Stream)); err != nil {
		return err
	}
	if r.Expected < StreamExists {
		return invalid(CodeInvalidExpectedVers, "expected_version %d is invalid", int64(r.Expected))
	}
	if len(r.Events) == 0 {
		return invalid(CodeInvalidEvent, "an append needs at least one event")
	}
	if len(r.Events) > l.MaxEventsPerAppend {
		return invalid(CodeTooManyEvents, "an append may hold at most %d events, got %d", l.MaxEventsPerAppend, len(r.Events))
	}
	seen := make(map[uuid.UUID]struct{}, len(r.Events))
	for i := range r.Events {
		ev := &r.Events[i]
		if err := ValidateEventType(ev.Type); err != nil {
			return invalid(CodeInvalidEvent, "events[%d]: %v", i, err)
		}
		// Compacting validates too, and stores the same bytes for the same
		// JSON however it was spaced, so a retry compares equal.
		data, err := compact(ev.Data)
		if err != nil {
			return invalid(CodeInvalidEvent, "events[%d]: data must be a JSON value", i)
		}
		ev.Data = data
		if isNull(ev.Metadata) {
			ev.Metadata = nil
		}
		if len(ev.Metadata) > 0 {
			meta, err := compact(ev.Metadata)
			if err != nil || meta[0] != '{' {
				return invalid(CodeInvalidEvent, "events[%d]: metadata must be a JSON object", i)
			}
			ev.Metadata = meta
		}
		if n := len(ev.Data) + len(ev.Metadata); n > l.MaxEventBytes {
			return invalid(CodeEventTooLarge, "events[%d]: %d bytes of data and metadata, limit %d", i, n, l.MaxEventBytes)
		}
		if ev.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("generate event id: %w", err)
			}
			ev.ID, ev.ClientID = id, false
		} else if !r.validated {
			ev.ClientID = true
		}
		if _, dup := seen[ev.ID]; dup {
			return invalid(CodeInvalidEvent, "events[%d]: id %s appears twice in the append", i, ev.ID)
		}
		seen[ev.ID] = struct{}{}
	}
	r.validated = true
	return nil
}

// KeepIDs marks r's event ids as already classified: a later Validate
// keeps each event's ClientID as set instead of taking every id for the
// client's (a request validated by the instance that forwarded it).
func (r *AppendRequest) KeepIDs() { r.validated = true }

func compact(b []byte) (json.RawMessage, error) {
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }
