package log

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// ErrEventNotFound: no event with that id is in the store's event index
// (never written, or outside the index's window: see Catalog.EventByID).
var ErrEventNotFound = errors.New("event not found")

// StreamSummary is a stream in a listing.
type StreamSummary struct {
	Stream    StreamID
	Category  string
	Version   int64     // the head as written to the stream's partitions
	CreatedAt time.Time // commit time of version 1
	UpdatedAt time.Time // commit time of the head
}

// StreamQuery selects a page of the stream catalog. Streams are listed by
// category, then id (so the streams of one category are together).
type StreamQuery struct {
	// Prefix keeps the streams whose id starts with it ("" : all).
	Prefix string
	// Category keeps the streams of one category ("" : all).
	Category string
	// After is the last stream of the previous page (its Next): the page
	// starts after it.
	After StreamID
	// Limit is the most streams in the page (> 0).
	Limit int
	// Visible, if set, drops the streams it refuses (the caller's read
	// scopes) before they count against Limit: a page never reveals a
	// stream the caller may not read.
	Visible func(StreamID) bool
}

// StreamPage is a page of the catalog. Next is where the next page starts
// (pass it as After), "" at the end. A page may hold fewer than Limit
// streams while Next is set (the store stops after scanning a bounded
// number of invisible streams).
type StreamPage struct {
	Streams []StreamSummary
	Next    StreamID
}

// CategoryCount is a category and how many streams it holds. Exact is
// false when the count stopped at the store's cap: Streams is then a lower
// bound.
type CategoryCount struct {
	Category string
	Streams  int64
	Exact    bool
}

// CategoryQuery selects a page of categories, in name order.
type CategoryQuery struct {
	// After is the last category of the previous page, or its Next
	// ("": from the first).
	After string
	// Limit is the most categories the page holds (positive).
	Limit int
	// Visible, if set, leaves out the categories it refuses (never
	// counted).
	Visible func(category string) bool
}

// CategoryPage is a page of categories with their stream counts. Next is
// "" at the end; otherwise the After of the next page, which may be a
// category Visible refused when the store's scan cap cut the page there
// (the HTTP layer seals such a Next).
type CategoryPage struct {
	Categories []CategoryCount
	Next       string
}

// Catalog is the discovery side of a store: which streams and categories
// exist, and where an event is by its id. Its indexes are written behind
// the commit, so an acknowledged append can take a moment (the store's
// fill delay) to show here; once a read of its stream returned it, it is
// listed.
type Catalog interface {
	// ListStreams returns a page of the stream catalog. Errors:
	// *ValidationError, ErrUnavailable.
	ListStreams(ctx context.Context, q StreamQuery) (StreamPage, error)
	// Categories returns a page of the categories q selects, in name
	// order, with stream counts. Errors: *ValidationError,
	// ErrUnavailable.
	Categories(ctx context.Context, q CategoryQuery) (CategoryPage, error)
	// EventByID returns the event with id, wherever it is, or
	// ErrEventNotFound, also when its stream does not pass visible (nil:
	// any), which is asked before the stream is read. An id in several
	// streams (ids are unique within a stream only) gives the earliest
	// committed of its events whose stream passes visible (by commit
	// time, then shard, log order and order in the commit). A shard log
	// record that fails its check, whose streams are then unknown, is a
	// *CorruptError when visible is nil, and holds no visible event
	// otherwise (a caller never learns of an id in a stream it may not
	// read; each such record is reported to ctx's WithSkippedCorrupt
	// function, if any). Errors: ErrUnavailable, *CorruptError.
	EventByID(ctx context.Context, id uuid.UUID, visible func(StreamID) bool) (RecordedEvent, error)
}

// skippedCorruptKey is the context key of WithSkippedCorrupt's function.
type skippedCorruptKey struct{}

// WithSkippedCorrupt returns ctx carrying f, which a store calls
// (SkippedCorrupt) for each stored row that failed its integrity check
// and that it left out of its answer instead of failing with it
// (Catalog.EventByID for a caller that may not read every stream): the
// answer does not show it, and the caller still counts it. f may be
// called from several goroutines at once.
func WithSkippedCorrupt(ctx context.Context, f func(*CorruptError)) context.Context {
	return context.WithValue(ctx, skippedCorruptKey{}, f)
}

// SkippedCorrupt reports err, a row left out of an answer, to ctx's
// function (WithSkippedCorrupt), if it has one.
func SkippedCorrupt(ctx context.Context, err *CorruptError) {
	if f, _ := ctx.Value(skippedCorruptKey{}).(func(*CorruptError)); f != nil {
		f(err)
	}
}

// ClusterInfo describes the deployment serving a keyspace.
type ClusterInfo struct {
	Keyspace string
	Shards   int
	// Self is the id of the instance that answered.
	Self      string
	Instances []InstanceInfo
	// Unowned lists the shards no live instance holds a lease on.
	Unowned []int
	Nodes   []NodeInfo
}

// InstanceInfo is a server instance of the keyspace (a live membership row).
type InstanceInfo struct {
	ID      string
	Address string
	Started time.Time
	Version string
	// SchemaVersion is the newest migration its binary carries: during a
	// rolling upgrade only the instances of the newest own shards.
	SchemaVersion int
	Shards        []ShardLease
}

// ShardLease is a shard an instance owns.
type ShardLease struct {
	Shard      int
	Epoch      int64
	LeaseUntil time.Time
}

// NodeInfo is a Cassandra node as the answering instance sees it.
type NodeInfo struct {
	Address        string
	HostID         string
	DataCenter     string
	Rack           string
	ReleaseVersion string
	// State is the driver's view: "up" or "down"; "unknown" for a node
	// the system tables list that the driver does not track.
	State string
	// Coordinator is true for the node that answered system.local.
	Coordinator bool
}

// ClusterStore describes the deployment a store runs in.
type ClusterStore interface {
	// Cluster returns the live instances of the keyspace with the shards
	// each owns, and the Cassandra nodes with their state. Errors:
	// ErrUnavailable.
	Cluster(ctx context.Context) (ClusterInfo, error)
}
