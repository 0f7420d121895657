package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// StreamSummary is a stream in a listing.
type StreamSummary struct {
	Stream   string `json:"stream"`
	Category string `json:"category"`
	// Version is the stream's head (a just-acknowledged append may take a
	// moment to show).
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ListStreamsOptions select a page of ListStreams.
type ListStreamsOptions struct {
	// Prefix keeps the streams whose id starts with it.
	Prefix string
	// Category keeps the streams of one category.
	Category string
	// After is the previous page's Next ("" : the first page).
	After string
	// Limit is the most streams in the page (0: the server's default, 100).
	Limit int
}

// StreamList is a page of ListStreams. Next is "" at the end; a page may
// hold fewer streams than asked while Next is set.
type StreamList struct {
	Streams []StreamSummary `json:"streams"`
	Next    string          `json:"next"`
}

// ListStreams returns a page of the server's streams, by category then id,
// only those the token may read.
func (c *Client) ListStreams(ctx context.Context, opts ListStreamsOptions) (*StreamList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"prefix": opts.Prefix, "category": opts.Category, "after": opts.After} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var body struct {
		Streams []StreamSummary `json:"streams"`
		Next    *string         `json:"next"`
	}
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/streams", query: q}, &body); err != nil {
		return nil, fmt.Errorf("eventlog: list streams: %w", err)
	}
	out := &StreamList{Streams: body.Streams}
	if body.Next != nil {
		out.Next = *body.Next
	}
	return out, nil
}

// CategoryCount is a category and its number of streams: exact when
// Exact, else a lower bound.
type CategoryCount struct {
	Category string `json:"category"`
	Streams  int64  `json:"streams"`
	Exact    bool   `json:"exact"`
}

// Categories returns the categories the token may read whole, with their
// stream counts, in name order: every page of GET /v1/categories, read one
// after another.
func (c *Client) Categories(ctx context.Context) ([]CategoryCount, error) {
	var (
		out   []CategoryCount
		after string
	)
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var body struct {
			Categories []CategoryCount `json:"categories"`
			Next       *string         `json:"next"`
		}
		if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/categories", query: q}, &body); err != nil {
			return nil, fmt.Errorf("eventlog: categories: %w", err)
		}
		out = append(out, body.Categories...)
		if body.Next == nil || *body.Next == after {
			return out, nil
		}
		after = *body.Next
	}
}

// EventByID returns the event with id, with its Stream set, or an error
// matching ErrEventNotFound. Ids are unique within a stream only: of the
// streams holding the id that the key may read, it is the event of the
// newest minute the server's index files it under (a UUIDv7 id has one)
// and, within it, committed earliest.
func (c *Client) EventByID(ctx context.Context, id uuid.UUID) (*Event, error) {
	var e Event
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/events/" + id.String()}, &e); err != nil {
		return nil, fmt.Errorf("eventlog: event %s: %w", id, err)
	}
	return &e, nil
}

// Cluster describes the deployment serving the server's keyspace.
type Cluster struct {
	Keyspace  string     `json:"keyspace"`
	Shards    int        `json:"shards"`
	Self      string     `json:"self"`
	Instances []Instance `json:"instances"`
	// Unowned are the shards no live instance holds (being taken over).
	Unowned []int           `json:"unowned_shards"`
	Nodes   []CassandraNode `json:"cassandra_nodes"`
}

// Instance is a server instance and the shards it owns.
type Instance struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Started time.Time `json:"started"`
	Version string    `json:"version"`
	// SchemaVersion is the newest schema migration the instance's binary
	// carries (0: not reported). During a rolling upgrade only the
	// instances of the newest own shards.
	SchemaVersion int          `json:"schema_version,omitempty"`
	Shards        []ShardLease `json:"shards"`
}

// ShardLease is a shard an instance owns, under an epoch.
type ShardLease struct {
	Shard      int       `json:"shard"`
	Epoch      int64     `json:"epoch"`
	LeaseUntil time.Time `json:"lease_until"`
}

// CassandraNode is a Cassandra node and its state as the server sees it.
type CassandraNode struct {
	Address        string `json:"address"`
	HostID         string `json:"host_id"`
	DataCenter     string `json:"data_center"`
	Rack           string `json:"rack"`
	ReleaseVersion string `json:"release_version"`
	State          string `json:"state"` // up, down, unknown
	Coordinator    bool   `json:"coordinator"`
}

// Cluster returns the instances serving the keyspace, the shards each
// owns and the Cassandra nodes (an admin token when keys are required).
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	var out Cluster
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/cluster"}, &out); err != nil {
		return nil, fmt.Errorf("eventlog: cluster: %w", err)
	}
	return &out, nil
}
