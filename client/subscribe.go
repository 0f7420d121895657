package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// SubscribeOptions say where a live subscription starts.
type SubscribeOptions struct {
	// From is the first version to receive. Default 1.
	From int64
}

// Subscribe follows stream live: it yields the events from From on, then
// every new event as it is appended, until ctx ends (iteration then stops
// without an error) or the loop breaks. A stream that does not exist yet
// is waited for.
//
// When the connection drops or the server restarts, Subscribe reconnects
// with back-off (RetryPolicy's delays, without a limit on attempts: a
// subscription outlives outages) and resumes after the last version it
// yielded, so each event is yielded exactly once, in order. An error that
// retrying cannot cure (a 4xx, such as an invalid stream id) is yielded and
// ends the iteration.
func (c *Client) Subscribe(ctx context.Context, stream string, opts SubscribeOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		next := max(opts.From, 1)
		err := c.follow(ctx, func() (bool, error) {
			before := next
			err := c.subscribeOnce(ctx, stream, &next, yield)
			return next != before, err
		})
		if err != nil {
			yield(Event{}, fmt.Errorf("eventlog: subscribe %s: %w", stream, err))
		}
	}
}

// follow runs a live subscription's connections (once) until ctx ends or
// the consumer stops (nil), or one fails in a way retrying cannot cure
// (that error). After a clean end (server shutdown) or a transient failure
// it reconnects, backing off while no event gets through (progress).
func (c *Client) follow(ctx context.Context, once func() (progress bool, err error)) error {
	failed := 0
	for ctx.Err() == nil {
		progress, err := once()
		switch {
		case errors.Is(err, errStopped) || ctx.Err() != nil:
			return nil
		case err != nil && !retryable(err):
			return err
		}
		if progress {
			failed = 0
		}
		failed++
		if sleep(ctx, c.retry.backoff(failed)) != nil {
			return nil
		}
	}
	return nil
}

// subscribeOnce runs one connection, yielding its events and advancing
// *next. It returns nil when the server ends the stream cleanly.
func (c *Client) subscribeOnce(ctx context.Context, stream string, next *int64, yield func(Event, error) bool) error {
	q := url.Values{"from": {strconv.FormatInt(*next, 10)}}
	res, err := c.send(ctx, &request{method: http.MethodGet, path: streamPath(stream, "subscribe"), query: q, accept: mediaNDJSON})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	at := func() string { return fmt.Sprintf("at version %d", *next) }
	return c.readEvents(ctx, res.Body, stream, at, func(ev Event) error {
		if ev.Version != *next {
			return fmt.Errorf("server sent version %d, expected %d", ev.Version, *next)
		}
		*next = ev.Version + 1
		if !yield(ev, nil) {
			return errStopped
		}
		return nil
	})
}
