package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// Headers of feed responses.
const (
	// HeaderFeedFrom is the position a feed stream or subscription starts
	// after, as a token: what from=now resolved to, so a client that is
	// cut before its first event resumes there and misses nothing.
	HeaderFeedFrom = "Eventlog-From"
	// HeaderFeedNext is the trailer of a feed stream that ended because it
	// caught up: the position to read on from (past the last event, up to
	// the watermark, so the next read does not scan the range again).
	HeaderFeedNext = "Eventlog-Next"
	// HeaderFeedCompleteUpTo is the trailer with the watermark the stream
	// stopped at, as complete_up_to in a page.
	HeaderFeedCompleteUpTo = "Eventlog-Complete-Up-To"
)

// readFeed serves GET /v1/feeds/{all | category/{c} | type/{t}}: a JSON
// page of the events after ?from= (a position token; empty: the start;
// "now": the current watermark), at most ?limit= of them, with "next" and
// "complete_up_to" (log.FeedPage). With Accept: application/x-ndjson the
// events stream one per line, read page after page until caught up with
// the watermark; the response then ends with the trailers Eventlog-Next
// and Eventlog-Complete-Up-To (limit does not apply). A stream that fails
// midway is cut, never ended as if complete: the client resumes from the
// last position it received.
func (s *Server) readFeed(c *echo.Context) error {
	feed, err := s.feedParam(c)
	if err != nil {
		return err
	}
	if err := s.allowFeed(c, feed); err != nil {
		return err
	}
	limit, err := intParam(c.QueryParams(), "limit", int64(s.cfg.FeedPageSize), 1)
	if err != nil {
		return err
	}
	if limit > int64(s.cfg.MaxFeedPageSize) {
		return invalidRequest(fmt.Sprintf("limit must be at most %d", s.cfg.MaxFeedPageSize))
	}
	ctx := c.Request().Context()
	pos, err := s.feedFrom(ctx, c.Request(), false)
	if err != nil {
		return err
	}
	if wantsNDJSON(c.Request()) {
		return s.feedStream(c, feed, pos)
	}
	page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: pos, Limit: int(limit)})
	if err != nil {
		return err
	}
	sw := newStreamWriter(c.Response(), http.StatusOK, echo.MIMEApplicationJSON, s.cfg.WriteTimeout)
	b := []byte(`{"events":[`)
	next, size := page.Next, 0
	for i := range page.Events {
		if i > 0 && size >= s.cfg.MaxPageBytes {
			// The page is full: read on after the last event sent.
			next = page.Events[i-1].Position
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		e := &page.Events[i]
		b = appendFeedEvent(b, e, e.Position.Token())
		size += len(b)
		if err := sw.append(b); err != nil {
			return s.failStream(c, sw, err)
		}
		b = b[:0]
	}
	b = append(b, `],"next":`...)
	b = appendString(b, next.Token())
	b = append(b, `,"complete_up_to":`...)
	b = appendTime(b, page.CompleteUpTo)
	b = append(b, "}\n"...)
	if err := sw.append(b); err != nil {
		return s.failStream(c, sw, err)
	}
	if err := sw.flush(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}

// feedStream writes the NDJSON stream of readFeed.
func (s *Server) feedStream(c *echo.Context, feed log.Feed, pos log.Position) error {
	sw := newStreamWriter(c.Response(), http.StatusOK, MediaTypeNDJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline()
	h := c.Response().Header()
	h.Set(HeaderFeedFrom, pos.Token())
	h.Set("Trailer", HeaderFeedNext+", "+HeaderFeedCompleteUpTo)
	_, wm, err := s.sendFeed(c.Request().Context(), sw, feed, &pos, false)
	if err == nil {
		err = sw.flush()
	}
	if err != nil {
		if !sw.started { // a problem answers instead: no stream headers
			h.Del(HeaderFeedFrom)
			h.Del("Trailer")
		}
		return s.failStream(c, sw, err)
	}
	h.Set(HeaderFeedNext, pos.Token())
	h.Set(HeaderFeedCompleteUpTo, formatTime(wm))
	return nil
}

// subscribeFeed serves GET /v1/feeds/{…}/subscribe: the feed's events
// after Last-Event-ID or ?from= (as readFeed), then every new event as the
// watermark passes it, until the client leaves or the server shuts down
// (follow: SSE or NDJSON, heartbeats, back-pressure). Each SSE id: is the
// event's position. With from=now an SSE stream starts with an id-only
// message, the resolved position, so a reconnecting EventSource resumes
// there rather than at a later "now".
//
// The subscriptions of one feed share a poller (feedProbe) that reads the
// feed when this instance moves the watermark (log.FeedWatcher) and every
// SubscribePoll (watermarks moved by other instances); a subscriber reads
// the feed itself only when the poller has seen an event past its
// position, so idle subscribers cost the store nothing each.
func (s *Server) subscribeFeed(c *echo.Context) error {
	feed, err := s.feedParam(c)
	if err != nil {
		return err
	}
	if err := s.allowFeed(c, feed); err != nil {
		return err
	}
	pos, err := s.feedFrom(c.Request().Context(), c.Request(), true)
	if err != nil {
		return err
	}
	release, err := s.acquireSubscription(c)
	if err != nil {
		return err
	}
	defer release()
	p, leave := s.feedPollers.join(feed.String(), s.cfg.SubscribePoll, s.watchFeeds(), s.feedProbe(feed))
	defer leave()
	shared := func() (<-chan struct{}, bool) {
		changed, newest, known := p.watch()
		return changed, known && pos.Less(newest)
	}
	c.Response().Header().Set(HeaderFeedFrom, pos.Token())
	announce := c.QueryParam("from") == "now" && strings.TrimSpace(c.Request().Header.Get("Last-Event-ID")) == ""
	return s.follow(c, nil, shared, func(ctx context.Context, sw *streamWriter, sse bool) (int, error) {
		if announce && sse {
			announce = false
			if err := sw.append(appendMessage(nil, true, []byte(pos.Token()), nil)); err != nil {
				return 0, err
			}
			if err := sw.flush(); err != nil { // now: the client may leave before any event
				return 0, err
			}
		}
		n, _, err := s.sendFeed(ctx, sw, feed, &pos, sse)
		return n, err
	})
}

// watchFeeds is the wake-up of feed pollers: this instance moved the
// watermark (log.FeedWatcher); nil if the store cannot tell.
func (s *Server) watchFeeds() func() (<-chan struct{}, func()) {
	if w, ok := s.store.(log.FeedWatcher); ok {
		return w.WatchFeeds
	}
	return nil
}

// feedProbe is the shared poller of feed's subscriptions: it follows the
// feed from the watermark at its start, and publishes the position of the
// newest event it read. Subscribers behind that read the feed themselves.
func (s *Server) feedProbe(feed log.Feed) probeFunc[log.Position] {
	var at log.Position
	started := false
	return func(ctx context.Context) (newest log.Position, found bool, err error) {
		if !started {
			wm, err := s.feeds.FeedWatermark(ctx)
			if err != nil {
				return newest, false, err
			}
			at, started = log.After(wm), true
		}
		for {
			page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: at, Limit: s.cfg.FeedPageSize})
			if err != nil && !found {
				return newest, false, err
			}
			if err != nil {
				return newest, true, nil // publish what was read; go on next time
			}
			if n := len(page.Events); n > 0 {
				newest, found = page.Events[n-1].Position, true
			}
			at = page.Next
			if len(page.Events) < s.cfg.FeedPageSize {
				return newest, found, nil
			}
		}
	}
}

// sendFeed writes the events of feed after *pos (SSE messages or NDJSON
// lines), a page (FeedPageSize) at a time, until a read comes back short:
// caught up with the watermark wm it returns. *pos follows what was
// written: each event's position, and last the watermark.
func (s *Server) sendFeed(ctx context.Context, sw *streamWriter, feed log.Feed, pos *log.Position, sse bool) (sent int, wm time.Time, err error) {
	var line []byte
	for {
		page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: *pos, Limit: s.cfg.FeedPageSize})
		if err != nil {
			return sent, wm, err
		}
		for i := range page.Events {
			if s.draining.Load() {
				return sent, wm, errDraining
			}
			e := &page.Events[i]
			tok := e.Position.Token()
			line = appendMessage(line[:0], sse, []byte(tok), func(b []byte) []byte { return appendFeedEvent(b, e, tok) })
			if err := sw.append(line); err != nil {
				return sent, wm, err
			}
			*pos = e.Position
			sent++
		}
		*pos, wm = page.Next, page.CompleteUpTo
		if len(page.Events) < s.cfg.FeedPageSize {
			return sent, wm, nil
		}
	}
}

// feedParam is the feed the path names; 501 if the store has no feeds.
func (s *Server) feedParam(c *echo.Context) (log.Feed, error) {
	if s.feeds == nil {
		return log.Feed{}, newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server's store does not serve feeds")
	}
	kind := c.Param("kind")
	if kind == "" {
		kind = "all" // the static routes of the all feed
	}
	return log.ParseFeed(kind, c.Param("name"))
}

// feedFrom is the position a feed read starts after: Last-Event-ID (if
// lastEventID, for subscriptions; it wins, as it is where a reconnecting
// client stopped), else ?from=: a token, empty for the start, or "now" for
// the current watermark (only events committed after it follow). A bad
// token is invalid_position; the store is asked only for "now", after
// every other check.
func (s *Server) feedFrom(ctx context.Context, r *http.Request, lastEventID bool) (log.Position, error) {
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); lastEventID && id != "" {
		return log.ParsePosition(id)
	}
	switch from, err := stringParam(r.URL.Query(), "from"); {
	case err != nil:
		return log.Position{}, err
	case from != "now":
		return log.ParsePosition(from)
	}
	wm, err := s.feeds.FeedWatermark(ctx)
	if err != nil {
		return log.Position{}, err
	}
	return log.After(wm), nil
}
