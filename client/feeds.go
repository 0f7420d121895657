package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

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
// starts; CompleteUpTo is the time up to which the read saw every shard's
// commits (a page may hold later events of other shards).
type FeedPage struct {
	Events       []FeedEvent `json:"events"`
	Next         string      `json:"next"`
	CompleteUpTo time.Time   `json:"complete_up_to"`
}

// FromNow, as a From position, starts at the feed's current end (the end
// of every shard's log): only events committed from then on follow.
const FromNow = "now"

// FeedOptions say where reading a feed starts.
type FeedOptions struct {
	// From is the position to start after: a FeedEvent.Position, a
	// FeedPage.Next, "" for the start of the feed, or FromNow.
	From string
}

// Headers of feed responses (see the server's README).
const (
	headerFeedFrom = "Eventlog-From" // the position a stream starts after
	headerFeedNext = "Eventlog-Next" // trailer: where a caught-up stream ends
)

// feedPath is /v1/feeds/{feed}/rest… with the feed's name escaped.
func feedPath(feed string, rest ...string) string {
	kind, name, named := strings.Cut(feed, "/")
	p := "/v1/feeds/" + url.PathEscape(kind)
	if named {
		p += "/" + url.PathEscape(name)
	}
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// ReadFeed returns one page of feed (AllFeed, CategoryFeed(c) or
// TypeFeed(t)): at most limit events (0: the server's default, 1000) after
// from (see FeedOptions.From). Pass the page's Next on as from to read on:
// reading on skips nothing and repeats nothing. An empty page means the
// feed holds nothing newer yet, except on a server on the shard-log write
// path, whose pages of a rare category or type can be empty while Next
// moves on: read on until Next stops moving. Errors: invalid_feed,
// invalid_position and invalid_request problems, and those of any read.
func (c *Client) ReadFeed(ctx context.Context, feed, from string, limit int) (*FeedPage, error) {
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p FeedPage
	if err := c.call(ctx, &request{method: http.MethodGet, path: feedPath(feed), query: q}, &p); err != nil {
		return nil, fmt.Errorf("eventlog: read feed %s: %w", feed, err)
	}
	return &p, nil
}

// Feed returns the events of feed after opts.From, streamed as NDJSON,
// until it has caught up with the feed's watermark. To read on later,
// start from the last event's Position.
//
// If the stream breaks off mid-way, Feed resumes after the last event it
// yielded (or where from=now started), so each event is yielded exactly
// once, in feed order; failed attempts back off as RetryPolicy says and
// MaxAttempts bounds the attempts in a row that yield no event.
func (c *Client) Feed(ctx context.Context, feed string, opts FeedOptions) iter.Seq2[FeedEvent, error] {
	return func(yield func(FeedEvent, error) bool) {
		from := opts.From
		err := c.resume(ctx, func() (bool, error) {
			before := from
			err := c.feedOnce(ctx, feedPath(feed), &from, yield)
			return from != before, err
		})
		if err != nil && !errors.Is(err, errStopped) {
			yield(FeedEvent{}, fmt.Errorf("eventlog: feed %s: %w", feed, err))
		}
	}
}

// SubscribeFeed follows feed live: it yields the events after opts.From,
// then every new event as the feed's watermark passes it, until ctx ends
// (iteration then stops without an error) or the loop breaks.
//
// As Subscribe, it reconnects with back-off when the connection drops or
// the server restarts (any instance serves the same feed) and resumes
// after the last event it yielded, so each event is yielded exactly once,
// in feed order. An error retrying cannot cure (a 4xx, such as an invalid
// feed or position) is yielded and ends the iteration.
func (c *Client) SubscribeFeed(ctx context.Context, feed string, opts FeedOptions) iter.Seq2[FeedEvent, error] {
	return func(yield func(FeedEvent, error) bool) {
		from := opts.From
		err := c.follow(ctx, func() (bool, error) {
			before := from
			err := c.feedOnce(ctx, feedPath(feed, "subscribe"), &from, yield)
			return from != before, err
		})
		if err != nil {
			yield(FeedEvent{}, fmt.Errorf("eventlog: subscribe to feed %s: %w", feed, err))
		}
	}
}

// feedOnce reads one feed response (a stream or a subscription) at path,
// yielding its events and advancing *from; it returns nil when the server
// ends the response cleanly. from=now is replaced by the position the
// server resolved it to, so a reconnection misses nothing.
func (c *Client) feedOnce(ctx context.Context, path string, from *string, yield func(FeedEvent, error) bool) error {
	q := url.Values{}
	if *from != "" {
		q.Set("from", *from)
	}
	res, err := c.send(ctx, &request{method: http.MethodGet, path: path, query: q, accept: mediaNDJSON})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if v, ok := res.Header[headerFeedFrom]; ok && *from == FromNow && len(v) > 0 {
		*from = v[0]
	}
	err = c.readLines(ctx, res.Body, func(line []byte) error {
		var ev FeedEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decode feed event after %q: %w", *from, err)
		}
		if ev.Position == "" {
			return fmt.Errorf("feed event %s@%d has no position", ev.Stream, ev.Version)
		}
		*from = ev.Position
		if !yield(ev, nil) {
			return errStopped
		}
		return nil
	})
	if next := res.Trailer.Get(headerFeedNext); err == nil && next != "" {
		*from = next // past the last event: the next read does not scan it again
	}
	return err
}
