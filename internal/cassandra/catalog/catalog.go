package catalog

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// Options configure a Catalog.
type Options struct {
	Session *gocql.Session
	// Streams reads the heads of listed streams.
	Streams *streams.Store
	// Shards is the keyspace's shard count (the id index is partitioned by
	// shard).
	Shards int
	// ReadEvent reads the event id of stream from version on, within the
	// chunk that holds version (after the stream's owner wrote its tail):
	// the id index files an event at its chunk's first version.
	ReadEvent func(ctx context.Context, stream log.StreamID, version int64, id uuid.UUID) (log.RecordedEvent, bool, error)
	// Locate finds event id in the log row of shard at seq, where the id
	// index files it: the stream and version of each event of the row
	// with that id, in the record's order, with the row's commit time (ids
	// are unique within a stream only), none when the row does not hold
	// it.
	Locate func(ctx context.Context, shard int, seq int64, id uuid.UUID) ([]Location, error)
	// CountCap is where a category's stream count stops (reported as not
	// exact). Default 100,000.
	CountCap int64
	// ScanCap bounds the catalog rows one listing page scans for streams
	// the caller may see. Default 10,000.
	ScanCap int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Clock is Cassandra's clock (dbclock): the time an id that is not a
	// UUIDv7 is filed under when its fill writes it, and the lookup's
	// window ends at. Owners' clocks, and so commit times, may be hours
	// apart, and a shard's log time jumps by the difference when it
	// changes owner. nil: the commit time, and Now.
	Clock func(ctx context.Context) time.Time
	// LogTimes returns each shard's log time as read now: no commit of
	// the shard acknowledged before the read is after it (zero: none
	// known). A lookup of an id that is not a UUIDv7 searches the hour
	// before it too (EventByID); nil: only the hour before Now.
	LogTimes func(ctx context.Context) ([]time.Time, error)
	// OldIndex says where event_index, written by servers before 0008,
	// may still hold an id (ReadOldIndex, when the store opens). Zero:
	// every lookup reads it.
	OldIndex OldIndex
	// Logger logs the corrupt log records a scoped lookup by id leaves
	// out (EventByID). Default: discard.
	Logger *slog.Logger
	// Slot picks the slot of a fill request's UUIDv7 id rows, in
	// [0, Slots). nil: one at random. Tests set it to file the ids of
	// several commits in one partition.
	Slot func() int
}

// Location is where an event is: its stream and version, and the time
// of its commit.
type Location struct {
	Stream  log.StreamID
	Version int64
	Time    time.Time
}

// Catalog is the discovery indexes of a keyspace.
type Catalog struct {
	o          Options
	session    *gocql.Session
	untimedTTL int // seconds

	mu         sync.Mutex
	categories map[string]bool // written by this instance
}

// New returns the catalog of o.Session's keyspace.
func New(o Options) *Catalog {
	if o.CountCap <= 0 {
		o.CountCap = 100_000
	}
	if o.ScanCap <= 0 {
		o.ScanCap = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Catalog{o: o, session: o.Session, categories: map[string]bool{},
		untimedTTL: int((UntimedWindow + 10*time.Minute) / time.Second)}
}

// slot is the slot of one fill request's UUIDv7 id rows.
func (c *Catalog) slot() int {
	if c.o.Slot != nil {
		return c.o.Slot()
	}
	return rand.IntN(Slots)
}

// ValidateQuery checks a listing's parameters (the prefix may be any
// prefix of a stream id; a category holds no '-').
func ValidateQuery(q log.StreamQuery) error {
	if q.Limit <= 0 {
		return &log.ValidationError{Code: log.CodeInvalidRequest, Message: "limit must be positive"}
	}
	if q.Prefix != "" {
		// A prefix is a stream id's beginning: validate it as an id.
		if _, err := log.ParseStreamID(q.Prefix); err != nil {
			return &log.ValidationError{Code: log.CodeInvalidRequest, Message: "prefix: " + err.Error()}
		}
	}
	if q.Category != "" {
		if _, err := log.ParseStreamID(q.Category); err != nil || strings.Contains(q.Category, "-") {
			return &log.ValidationError{Code: log.CodeInvalidRequest, Message: "category must be a stream id without '-'"}
		}
	}
	if q.After != "" {
		if _, err := log.ParseStreamID(string(q.After)); err != nil {
			return &log.ValidationError{Code: log.CodeInvalidRequest, Message: "after: " + err.Error()}
		}
	}
	return nil
}
