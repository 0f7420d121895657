package log

import (
	"context"
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
	// CheckFeed refuses r as ReadFeed would before its first event,
	// without reading events (a HEAD of a feed read): the same errors,
	// but for what only the events would tell.
	CheckFeed(ctx context.Context, r FeedRead) error
	// FeedEnd returns the token of feed's end now (from=now): reading
	// on from it returns the events committed from about now on, never
	// one committed well before the call (a store whose feeds trail its
	// commits, behind a watermark, may return a few committed just
	// before it). Errors: *ValidationError (CodeInvalidFeed),
	// ErrUnavailable.
	FeedEnd(ctx context.Context, feed Feed) (string, error)
}

// FeedPager is implemented by stores that can read a feed page after
// page from one position without starting each page over: a catch-up
// read to the feed's end.
type FeedPager interface {
	// FeedPages starts a read of r.Feed after r.After (r.Limit and
	// r.MaxBytes are not used: each page takes its own). Errors: as
	// ReadFeed's.
	FeedPages(ctx context.Context, r FeedRead) (FeedPages, error)
}

// FeedPages is a feed read page after page: each Next returns the page
// ReadFeed would return from the last page's Next (at most limit events,
// ended early at about maxBytes when positive), until a page AtEnd; after
// it, or after an error, it returns the same again. A page's Events, and
// the bytes of their Data and Metadata, are the caller's until the second
// Next after the one that returned it (which may reuse them): a caller may
// read one page ahead. Close it when done. Not safe for concurrent use.
type FeedPages interface {
	Next(limit, maxBytes int) (FeedPage, error)
	Close()
}

// FeedWatcher is implemented by stores that can say when a feed may have
// new events (this instance committed, or an append it forwarded to a
// shard's owner did), so feed
// subscriptions wake at once instead of at their next poll. Like Watcher,
// it is a hint.
type FeedWatcher interface {
	WatchFeeds() (<-chan struct{}, func())
}
