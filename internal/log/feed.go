package log

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"strings"
	"time"
)

// FeedKind says which events a feed holds.
type FeedKind uint8

const (
	// FeedAll holds every event.
	FeedAll FeedKind = iota + 1
	// FeedCategory holds the events of the streams of one category.
	FeedCategory
	// FeedType holds the events of one type.
	FeedType
)

// Feed names one feed: all, a category or an event type.
type Feed struct {
	Kind FeedKind
	Name string // category or type; empty for FeedAll
}

// AllFeed is the feed of every event.
var AllFeed = Feed{Kind: FeedAll}

// CategoryFeed returns the feed of category c ("user" for "user-42").
func CategoryFeed(c string) Feed { return Feed{Kind: FeedCategory, Name: c} }

// TypeFeed returns the feed of event type t.
func TypeFeed(t string) Feed { return Feed{Kind: FeedType, Name: t} }

// ParseFeed validates a feed given by kind ("all", "category", "type") and
// name, as the HTTP paths spell them.
func ParseFeed(kind, name string) (Feed, error) {
	switch kind {
	case "all":
		if name != "" {
			return Feed{}, invalid(CodeInvalidFeed, "the all feed takes no name")
		}
		return AllFeed, nil
	case "category":
		// A category is a stream id prefix without '-'.
		if _, err := ParseStreamID(name); err != nil || strings.IndexByte(name, '-') >= 0 {
			return Feed{}, invalid(CodeInvalidFeed, "category must be 1-%d characters from A-Z a-z 0-9 _ . : @ + = without '-'", MaxStreamIDLen)
		}
		return CategoryFeed(name), nil
	case "type":
		if err := ValidateEventType(name); err != nil {
			return Feed{}, invalid(CodeInvalidFeed, "%s", err.Error())
		}
		return TypeFeed(name), nil
	}
	return Feed{}, invalid(CodeInvalidFeed, "unknown feed kind %q; use all, category or type", kind)
}

// String is the feed's path form: "all", "category/user", "type/UserCreated".
func (f Feed) String() string {
	switch f.Kind {
	case FeedAll:
		return "all"
	case FeedCategory:
		return "category/" + f.Name
	case FeedType:
		return "type/" + f.Name
	}
	return "invalid"
}

// FeedsOf returns the feeds an event of type typ on stream belongs to.
func FeedsOf(stream StreamID, typ string) [3]Feed {
	return [3]Feed{AllFeed, CategoryFeed(stream.Category()), TypeFeed(typ)}
}

// FeedShards is the number of shards every feed is split into by stream;
// a stream's events are all in one shard (ShardOf), which keeps each
// stream's order inside one partition and lets consumer groups split a feed
// by stream. Fixed: it is part of the stored layout and of tokens.
const FeedShards = 16

// ShardOf returns stream's feed shard: FNV-1a of the id modulo FeedShards.
func ShardOf(stream StreamID) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % FeedShards)
}

// Position is the per-stream store's (internal/cassandra, --write-path
// buckets) place in the feeds' common order, and the checkpoint of its
// consumer groups: commit time, then stream id, then version. The feed
// API itself passes positions as opaque tokens (FeedRead.After,
// FeedPage.Next, FeedEvent.Position) that only the store that issued them
// decodes; this is the encoding of that store's tokens (Token,
// ParsePosition). The zero Position is before every event. A Position
// with Time set and no Stream means "after every event committed at or
// before Time" (where a read stopped at a watermark).
type Position struct {
	Time    time.Time // commit time, millisecond precision
	Stream  StreamID
	Version int64
}

// After returns the position just after every event committed at or
// before t.
func After(t time.Time) Position { return Position{Time: t.UTC().Truncate(time.Millisecond)} }

// PositionOf returns the position of an event.
func PositionOf(e *RecordedEvent) Position {
	return Position{Time: e.Time.UTC(), Stream: e.Stream, Version: e.Version}
}

// IsZero reports whether p is the start of the feeds.
func (p Position) IsZero() bool { return p.Time.IsZero() && p.Stream == "" }

// Less reports whether p comes before q. A "through t" position sorts after
// every event at t.
func (p Position) Less(q Position) bool {
	if !p.Time.Equal(q.Time) {
		return p.Time.Before(q.Time)
	}
	if (p.Stream == "") != (q.Stream == "") {
		return q.Stream == "" // "through t" is last among positions at t
	}
	if p.Stream != q.Stream {
		return p.Stream < q.Stream
	}
	return p.Version < q.Version
}

// tokenVersion prefixes every token so the format can change compatibly.
const tokenVersion = 1

// Token encodes p as an opaque, URL-safe string; "" is the start.
func (p Position) Token() string {
	if p.IsZero() {
		return ""
	}
	b := make([]byte, 0, 24+len(p.Stream))
	b = append(b, tokenVersion)
	b = binary.AppendVarint(b, p.Time.UnixMilli())
	b = binary.AppendUvarint(b, uint64(p.Version))
	b = append(b, p.Stream...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParsePosition decodes a token made by Position.Token; "" is the start.
func ParsePosition(token string) (Position, error) {
	if token == "" {
		return Position{}, nil
	}
	bad := invalid(CodeInvalidPosition, "position token %q is not one this server issued", token)
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 3 || b[0] != tokenVersion {
		return Position{}, bad
	}
	b = b[1:]
	ms, n := binary.Varint(b)
	if n <= 0 || ms <= 0 {
		return Position{}, bad
	}
	b = b[n:]
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<62 {
		return Position{}, bad
	}
	b = b[n:]
	p := Position{Time: time.UnixMilli(ms).UTC(), Version: int64(v)}
	if len(b) > 0 {
		s, err := ParseStreamID(string(b))
		if err != nil || v == 0 {
			return Position{}, bad
		}
		p.Stream = s
	} else if v != 0 {
		return Position{}, bad
	}
	return p, nil
}

// FeedEvent is an event read from a feed, with its position.
type FeedEvent struct {
	RecordedEvent
	// Position is an opaque token of the store's: reading on from it
	// (FeedRead.After) returns the events of the feed after this one.
	Position string
}

// FeedRead selects the events of Feed after the position token After ("":
// the start of the feed), in feed order, at most Limit of them (0: the
// store's page size). Shards, if set, limits the read to those of the
// store's shards (consumer groups).
type FeedRead struct {
	Feed   Feed
	After  string
	Limit  int
	Shards []int
	// MaxBytes, if positive, asks the store to end the page once its
	// events' data, metadata and names reach about that many bytes (at
	// least one event), so a page read never holds much more in memory;
	// Next then follows the last event returned. Stores may ignore it.
	MaxBytes int
}

// FeedPage is one read of a feed. Next is the token where the following
// read starts: the last event's position, or past it over what the read
// scanned without finding an event of the feed (up to the watermark), so
// an idle reader does not scan the same range again. CompleteUpTo is the
// time up to which the read is complete: every event committed at or
// before it is before Next. AtEnd says the read reached the end of the
// feed as the store saw it: reading on from Next returns only events
// committed later (a page short of Limit may still not be at the end).
type FeedPage struct {
	Events       []FeedEvent
	Next         string
	CompleteUpTo time.Time
	AtEnd        bool
}

// FeedStore reads feeds. Every acknowledged event appears exactly once in
// each of its feeds (FeedsOf), at its position; a read never returns
// events past what it can vouch for (CompleteUpTo), so reading on from
// Next never skips one.
//
// Positions are tokens the store issues and checks: each store has its
// own format, and a token may be bound to the feed it was read from. A
// token the store did not issue (for that feed) is a *ValidationError
// with code CodeInvalidPosition, from ReadFeed.
type FeedStore interface {
	// ReadFeed reads a page of r.Feed after r.After. Errors:
	// *ValidationError (CodeInvalidFeed, CodeInvalidPosition,
	// CodeInvalidRequest), ErrUnavailable.
	ReadFeed(ctx context.Context, r FeedRead) (FeedPage, error)
	// FeedEnd returns the token of feed's end now (from=now): reading
	// on from it returns the events committed from about now on, never
	// one committed well before the call (a store whose feeds trail its
	// commits, behind a watermark, may return a few committed just
	// before it). Errors: *ValidationError (CodeInvalidFeed),
	// ErrUnavailable.
	FeedEnd(ctx context.Context, feed Feed) (string, error)
}

// FeedWatcher is implemented by stores that can say when a feed may have
// new events (the watermark moved, or this instance committed), so feed
// subscriptions wake at once instead of at their next poll. Like Watcher,
// it is a hint.
type FeedWatcher interface {
	WatchFeeds() (<-chan struct{}, func())
}
