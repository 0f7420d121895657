package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; it makes retries of the append safe. The
	// zero UUID means "generate one": the client fills in a UUIDv7 before
	// the first attempt (never the server, whose ids could not identify a
	// retry). Set your own to make a retry safe across process restarts,
	// e.g. an id derived from the command that caused the event.
	ID uuid.UUID
	// Type is the event type: 1–200 characters from [A-Za-z0-9_.:-].
	Type string
	// Data is the payload, any JSON value. It is encoded with
	// encoding/json, except json.RawMessage and []byte, which are sent as
	// the JSON text they hold.
	Data any
	// Metadata is optional: nil, or a value that encodes as a JSON object
	// (same encoding rules as Data).
	Metadata any
}

// Event is an event as stored.
type Event struct {
	// Stream is the stream the event belongs to.
	Stream  string    `json:"stream,omitempty"`
	ID      uuid.UUID `json:"id"`
	Type    string    `json:"type"`
	Version int64     `json:"version"`
	// Time is when the event was committed (millisecond precision).
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
	// Metadata is nil when the event has none.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// DecodeData unmarshals the event's Data into v.
func (e *Event) DecodeData(v any) error { return json.Unmarshal(e.Data, v) }

// AppendResult is the outcome of an append.
type AppendResult struct {
	Stream       string `json:"stream"`
	FirstVersion int64  `json:"first_version"`
	LastVersion  int64  `json:"last_version"`
	// Events are the appended events' ids (including generated ones) and
	// versions, in the order given.
	Events []AppendedEvent `json:"events"`
	// Time is the events' commit time (their Event.Time). Once a feed's
	// CompleteUpTo reaches it, they are in every feed they belong to.
	Time time.Time `json:"time"`
	// Duplicate is true when the events had already been stored by an
	// earlier request with the same ids: nothing was written and the
	// versions are the original ones. An append whose first attempt was
	// stored but whose answer was lost comes back this way after the
	// client's own retry.
	Duplicate bool `json:"duplicate"`
}

// AppendedEvent is one event's id and version in an AppendResult.
type AppendedEvent struct {
	ID      uuid.UUID `json:"id"`
	Version int64     `json:"version"`
}

// appendBody is the JSON of an append (Stream only on bulk lines).
type appendBody struct {
	Stream   string          `json:"stream,omitempty"`
	Expected ExpectedVersion `json:"expected_version"`
	Events   []eventBody     `json:"events"`
}

type eventBody struct {
	ID       uuid.UUID       `json:"id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// encodeAppend encodes an append, giving every event without an id a new
// UUIDv7. The bytes are then fixed: every attempt sends the same ids and
// the same payloads, which is what makes a retry recognisable.
func encodeAppend(stream string, expected ExpectedVersion, events []EventData) ([]byte, error) {
	body := appendBody{Stream: stream, Expected: expected, Events: make([]eventBody, len(events))}
	for i := range events {
		ev := &events[i]
		id := ev.ID
		if id == uuid.Nil {
			var err error
			if id, err = uuid.NewV7(); err != nil {
				return nil, fmt.Errorf("generate event id: %w", err)
			}
		}
		data, err := marshalJSON(ev.Data)
		if err != nil {
			return nil, fmt.Errorf("events[%d].data: %w", i, err)
		}
		var meta json.RawMessage
		if ev.Metadata != nil {
			if meta, err = marshalJSON(ev.Metadata); err != nil {
				return nil, fmt.Errorf("events[%d].metadata: %w", i, err)
			}
		}
		body.Events[i] = eventBody{ID: id, Type: ev.Type, Data: data, Metadata: meta}
	}
	return json.Marshal(body)
}

// Append appends events atomically to stream at consecutive versions, if
// the stream matches expected. Events without an ID get a UUIDv7 (see
// EventData.ID); the result lists every id with its version.
//
// Failures that may be transient (see RetryPolicy) are retried with the
// same ids, so the events are stored at most once. Errors:
// ErrWrongExpectedVersion (the *Problem's CurrentVersion tells the
// stream's version), ErrIdempotencyConflict, validation problems (400,
// 413), and once retries are spent or ctx is done ErrUnavailable (nothing
// was written) or ErrOutcomeUnknown (the append may have been stored:
// Append again with the same ids to find out).
func (c *Client) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (*AppendResult, error) {
	body, err := encodeAppend("", expected, events)
	if err != nil {
		return nil, fmt.Errorf("eventlog: append to %s: %w", stream, err)
	}
	r := &request{method: http.MethodPost, path: streamPath(stream, "events"), body: body, contentType: mediaJSON, write: true}
	var res AppendResult
	if err := c.call(ctx, r, &res); err != nil {
		return nil, fmt.Errorf("eventlog: append to %s: %w", stream, err)
	}
	return &res, nil
}

// ReadOptions select a page of a stream.
type ReadOptions struct {
	// From is the lowest version to read. Default 1.
	From int64
	// To is the highest version to read, inclusive. Default (0): the head.
	To int64
	// Limit bounds the events of the page. Default (0): the server's
	// (100); the server caps it at its maximum page size (1000).
	Limit int
	// Backward reads newest first, starting at To.
	Backward bool
	// UntilTime, if set, limits the read to the events committed at or
	// before it: the stream as it was at that moment (a backward read
	// starts at the last of them). A stream with no event by then is
	// ErrStreamNotFound.
	UntilTime time.Time
}

func (o ReadOptions) query() url.Values {
	q := url.Values{}
	if o.From != 0 {
		q.Set("from", strconv.FormatInt(o.From, 10))
	}
	if o.To != 0 {
		q.Set("to", strconv.FormatInt(o.To, 10))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Backward {
		q.Set("direction", "backward")
	}
	setTime(q, "until_time", o.UntilTime)
	return q
}

// setTime sets the RFC 3339 parameter name to t, unless t is zero.
func setTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

// Page is one page of a stream's events.
type Page struct {
	Stream string
	Events []Event
	// Next is where the next page starts: its From when reading forward,
	// its To when reading backward; 0 when this page is the last.
	Next int64
}

// Read returns one page of stream's events. A stream without events is
// ErrStreamNotFound; a range past the head of an existing stream is an
// empty page. To go through all events, use Replay, or pass Next on as
// From (forward) or To (backward) until it is 0.
func (c *Client) Read(ctx context.Context, stream string, opts ReadOptions) (*Page, error) {
	r := &request{method: http.MethodGet, path: streamPath(stream, "events"), query: opts.query()}
	var body struct {
		Stream string  `json:"stream"`
		Events []Event `json:"events"`
		Next   *int64  `json:"next"`
	}
	if err := c.call(ctx, r, &body); err != nil {
		return nil, fmt.Errorf("eventlog: read %s: %w", stream, err)
	}
	p := &Page{Stream: body.Stream, Events: body.Events}
	if body.Next != nil {
		p.Next = *body.Next
	}
	for i := range p.Events {
		p.Events[i].Stream = p.Stream
	}
	return p, nil
}
