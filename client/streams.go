package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// StreamInfo describes a stream.
type StreamInfo struct {
	Stream string `json:"stream"`
	// Category is the part of the id before the first '-' ("user" for
	// "user-42").
	Category string `json:"category"`
	// Version is the version of the stream's last event.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Buckets is the number of time-bucketed partitions holding the
	// events; CurrentBucket the one appends go to.
	Buckets       int   `json:"buckets"`
	CurrentBucket int64 `json:"current_bucket"`
	// LatestSnapshotVersion is the version of the newest snapshot; 0: none.
	LatestSnapshotVersion int64 `json:"-"`
}

// StreamInfo returns what the server knows of stream, or
// ErrStreamNotFound if it has no events.
func (c *Client) StreamInfo(ctx context.Context, stream string) (*StreamInfo, error) {
	var body struct {
		StreamInfo
		LatestSnapshot *int64 `json:"latest_snapshot_version"`
	}
	r := &request{method: http.MethodGet, path: streamPath(stream)}
	if err := c.call(ctx, r, &body); err != nil {
		return nil, fmt.Errorf("eventlog: stream info of %s: %w", stream, err)
	}
	info := body.StreamInfo
	if body.LatestSnapshot != nil {
		info.LatestSnapshotVersion = *body.LatestSnapshot
	}
	return &info, nil
}
