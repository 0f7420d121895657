package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	Stream string `json:"stream"`
	// Version is the stream version the state was built from.
	Version int64 `json:"version"`
	// CreatedAt is zero for a snapshot stored without it (left out of its
	// JSON then, as the server leaves it out).
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Size is the state's JSON size; StoredSize its size as stored, after
	// Compression ("zstd").
	Size        int    `json:"size"`
	StoredSize  int    `json:"stored_size"`
	Compression string `json:"compression,omitempty"`
}

// Snapshot is a stored aggregate state. In a State only Stream, Version,
// CreatedAt and State are set.
type Snapshot struct {
	SnapshotInfo
	// State is the JSON stored with PutSnapshot.
	State json.RawMessage `json:"state"`
}

// DecodeState unmarshals the snapshot's State into v.
func (s *Snapshot) DecodeState(v any) error { return json.Unmarshal(s.State, v) }

// PutSnapshot stores state, any JSON value (encoded like EventData.Data),
// as the aggregate state of stream at version, which must be within
// 1..head (else ErrInvalidSnapshotVersion). Storing the same snapshot
// again is harmless, so it is retried like an append.
func (c *Client) PutSnapshot(ctx context.Context, stream string, version int64, state any) (*SnapshotInfo, error) {
	body, err := marshalJSON(state)
	if err != nil {
		return nil, fmt.Errorf("eventlog: put snapshot %s@%d: state: %w", stream, version, err)
	}
	r := &request{method: http.MethodPut, path: streamPath(stream, "snapshots", strconv.FormatInt(version, 10)),
		body: body, contentType: mediaJSON, write: true}
	var info SnapshotInfo
	if err := c.call(ctx, r, &info); err != nil {
		return nil, fmt.Errorf("eventlog: put snapshot %s@%d: %w", stream, version, err)
	}
	return &info, nil
}

// LatestSnapshot returns stream's newest snapshot at or below maxVersion
// (0: any), or ErrSnapshotNotFound.
func (c *Client) LatestSnapshot(ctx context.Context, stream string, maxVersion int64) (*Snapshot, error) {
	q := url.Values{}
	if maxVersion != 0 {
		q.Set("max_version", strconv.FormatInt(maxVersion, 10))
	}
	r := &request{method: http.MethodGet, path: streamPath(stream, "snapshots", "latest"), query: q}
	var s Snapshot
	if err := c.call(ctx, r, &s); err != nil {
		return nil, fmt.Errorf("eventlog: latest snapshot of %s: %w", stream, err)
	}
	return &s, nil
}

// State is an aggregate as loaded in one round trip: the latest snapshot
// at or below Version, and the events after it up to Version.
type State struct {
	Stream string `json:"stream"`
	// Version is the version the state is at: the last event's, or the
	// snapshot's when no event follows it.
	Version int64 `json:"version"`
	// Snapshot is nil when the stream has none at or below Version; Events
	// then start at version 1.
	Snapshot *Snapshot `json:"snapshot"`
	Events   []Event   `json:"events"`
}

// State loads stream's aggregate at version at (0: the head): the latest
// snapshot at or below it and the events after the snapshot, checked by
// the server to be exactly snapshot+1..at. A stream without events is
// ErrStreamNotFound.
func (c *Client) State(ctx context.Context, stream string, at int64) (*State, error) {
	q := url.Values{}
	if at != 0 {
		q.Set("at", strconv.FormatInt(at, 10))
	}
	return c.state(ctx, stream, q)
}

// StateAt loads stream's aggregate as it was at moment t: at the last
// version committed at or before t, from the latest snapshot at or below
// that version, plus the events after it. A t at or after the last commit
// gives the head. A stream with no event committed by t (it did not exist
// yet, or never did) is ErrStreamNotFound. Commit times have millisecond
// precision; an event committed exactly at t is included.
func (c *Client) StateAt(ctx context.Context, stream string, t time.Time) (*State, error) {
	q := url.Values{"at_time": {t.UTC().Format(time.RFC3339Nano)}}
	return c.state(ctx, stream, q)
}

func (c *Client) state(ctx context.Context, stream string, q url.Values) (*State, error) {
	r := &request{method: http.MethodGet, path: streamPath(stream, "state"), query: q}
	var st State
	if err := c.call(ctx, r, &st); err != nil {
		return nil, fmt.Errorf("eventlog: state of %s: %w", stream, err)
	}
	if st.Snapshot != nil {
		st.Snapshot.Stream = st.Stream
	}
	for i := range st.Events {
		st.Events[i].Stream = st.Stream
	}
	return &st, nil
}
