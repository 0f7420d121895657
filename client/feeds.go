package client

import "time"

// Feeds name: "all", "category/<category>" or "type/<event type>".
const AllFeed = "all"

// CategoryFeed returns the name of the feed of a category ("user" for the
// streams "user-1", "user-2", ...).
func CategoryFeed(category string) string { return "category/" + category }

// TypeFeed returns the name of the feed of an event type.
func TypeFeed(eventType string) string { return "type/" + eventType }

// FeedEvent is an event read from a feed. Position is its opaque,
// resumable token: reading on from it returns every later event of the
// feed, none twice.
type FeedEvent struct {
	Event
	Position string `json:"position"`
}

// FeedPage is one read of a feed. Next is where the following read
// starts; CompleteUpTo is the watermark the read stopped at: every event
// committed at or before it is in its feeds.
type FeedPage struct {
	Events       []FeedEvent `json:"events"`
	Next         string      `json:"next"`
	CompleteUpTo time.Time   `json:"complete_up_to"`
}
