package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
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
	// caught up: the position to read on from (past the last event, over
	// what the store scanned, so the next read does not scan it again).
	HeaderFeedNext = "Eventlog-Next"
	// HeaderFeedCompleteUpTo is the trailer with the watermark the stream
	// stopped at, as complete_up_to in a page.
	HeaderFeedCompleteUpTo = "Eventlog-Complete-Up-To"
)

// readFeed serves GET /v1/feeds/{all | category/{c} | type/{t}}: a JSON
// page of the events after ?from= (a position token; empty: the start;
// "now": the feed's end, log.FeedStore.FeedEnd), at most ?limit= of them,
// with "next" and "complete_up_to" (log.FeedPage). Tokens are the store's:
// this layer passes them through and the store refuses those it did not
// issue (400 invalid_position). With Accept: application/x-ndjson the
// events stream one per line, read page after page until a page is at the
// end of the feed (log.FeedPage.AtEnd); the response then ends with the
// trailers Eventlog-Next and Eventlog-Complete-Up-To (limit does not
// apply). A stream that fails midway is cut, never ended as if complete:
// the client resumes from the last position it received.
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
	if err := feedDirection(c.QueryParams()); err != nil {
		return err
	}
	ctx := c.Request().Context()
	pos, err := s.feedFrom(ctx, c.Request(), feed, false)
	if err != nil {
		return err
	}
	if isHead(c) {
		// The position refused as the GET's read would refuse it, read
		// no event.
		if err := s.feeds.CheckFeed(ctx, log.FeedRead{Feed: feed, After: pos}); err != nil {
			return err
		}
		if wantsNDJSON(c.Request()) {
			if s.draining.Load() {
				// As the GET, which ends at its first event: at the
				// feed's end now there is none, and it answers 200.
				// Elsewhere a category or type feed may hold no event
				// of its own past the position either, which only
				// reading the log rows would tell: 503 (README).
				end, err := s.feeds.FeedEnd(ctx, feed)
				if err != nil {
					return err
				}
				if pos != end {
					return shuttingDown()
				}
			}
			return headAnswer(c, MediaTypeNDJSON)
		}
		return headAnswer(c, echo.MIMEApplicationJSON)
	}
	// A page holds its events until sent, a stream two pages at a time.
	release, err := s.acquireLongRead(c)
	if err != nil {
		return err
	}
	defer release()
	if wantsNDJSON(c.Request()) {
		return s.feedStream(c, feed, pos)
	}
	page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: pos, Limit: int(limit), MaxBytes: s.cfg.MaxPageBytes})
	if err != nil {
		return err
	}
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, echo.MIMEApplicationJSON, s.cfg.WriteTimeout)
	b := []byte(`{"events":[`)
	next, complete, size := page.Next, page.CompleteUpTo, 0
	var enc encoder
	for i := range page.Events {
		if i > 0 && size >= s.cfg.MaxPageBytes {
			// The page is full: read on after the last event sent. The
			// events left out come after next, so the page is complete
			// only up to just before the earliest of them (the store
			// sized the page by its own estimate of the events' bytes,
			// which a position token of many shards outweighs).
			next = page.Events[i-1].Position
			for _, e := range page.Events[i:] {
				if t := e.Time.Add(-time.Millisecond); !complete.IsZero() && t.Before(complete) {
					complete = t
				}
			}
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		e := &page.Events[i]
		b = enc.feedEvent(b, e)
		size += len(b)
		if err := sw.append(b); err != nil {
			return s.failStream(c, sw, err)
		}
		b = b[:0]
	}
	b = append(b, `],"next":`...)
	b = appendString(b, next)
	b = append(b, `,"complete_up_to":`...)
	b = appendTime(b, complete)
	b = append(b, "}\n"...)
	if err := sw.append(b); err != nil {
		return s.failStream(c, sw, err)
	}
	if err := sw.end(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}

// feedStream writes the NDJSON stream of readFeed.
func (s *Server) feedStream(c *echo.Context, feed log.Feed, pos string) error {
	// Pages as large as allowed: the client takes the feed to its end, and
	// each page costs the store a restart of its per-shard reads, unless it
	// can read on across pages (log.FeedPager). A position it refuses is a
	// problem, before any stream header. It is cut once its key is revoked
	// or expires meanwhile: the feed may be long.
	ctx, _, stop := s.whileKeyValid(c)
	defer stop()
	var pages log.FeedPages
	if fp, ok := s.feeds.(log.FeedPager); ok {
		var err error
		if pages, err = fp.FeedPages(ctx, log.FeedRead{Feed: feed, After: pos}); err != nil {
			return err
		}
		defer pages.Close()
	}
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, MediaTypeNDJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline(c.Request())
	sw.pipeline()
	defer sw.wait() // a panic too leaves the response only once the batch in flight is written
	h := c.Response().Header()
	h.Set(HeaderFeedFrom, pos)
	h.Set("Trailer", HeaderFeedNext+", "+HeaderFeedCompleteUpTo)
	_, wm, err := s.sendFeedPages(ctx, sw, feed, &pos, false, nil, s.cfg.MaxFeedPageSize, 0, pages)
	if err == nil {
		err = sw.end()
	}
	if err != nil {
		if !sw.started { // a problem answers instead: no stream headers
			h.Del(HeaderFeedFrom)
			h.Del("Trailer")
		}
		return s.failStream(c, sw, keyRevoked(ctx, err))
	}
	h.Set(HeaderFeedNext, pos)
	h.Set(HeaderFeedCompleteUpTo, formatTime(wm))
	return nil
}

// subscribeFeed serves GET /v1/feeds/{…}/subscribe: the feed's events
// after Last-Event-ID or ?from= (as readFeed), then every new event as the
// feed shows it, until the client leaves or the server shuts down (follow:
// SSE or NDJSON, heartbeats, back-pressure). Each SSE id: is the event's
// position. With from=now an SSE stream starts with an id-only message,
// the resolved position, so a reconnecting EventSource resumes there
// rather than at a later "now".
//
// The first page is read before the response starts, so a position the
// store refuses is a 400, not a broken stream. The subscriptions of one
// feed share a poller (feedProbe) that reads the feed when the store says
// it may have moved here (log.FeedWatcher: an append through this
// instance committed) and every SubscribePoll (what other instances
// did); a subscriber reads the feed itself only when the poller has seen
// a new event since the subscriber's last read began, so idle subscribers
// cost the store nothing each.
func (s *Server) subscribeFeed(c *echo.Context) error {
	feed, err := s.feedParam(c)
	if err != nil {
		return err
	}
	if err := s.allowFeed(c, feed); err != nil {
		return err
	}
	if err := feedDirection(c.QueryParams()); err != nil {
		return err
	}
	ctx := c.Request().Context()
	pos, err := s.feedFrom(ctx, c.Request(), feed, true)
	if err != nil {
		return err
	}
	if isHead(c) {
		// On a server shutting down the GET is refused before it reads
		// (acquireSubscription): 503 whatever the position.
		if s.draining.Load() {
			return shuttingDown()
		}
		// The GET reads its first page before it answers: a position
		// that read refuses is its 400.
		if err := s.feeds.CheckFeed(ctx, log.FeedRead{Feed: feed, After: pos}); err != nil {
			return err
		}
		c.Response().Header().Set(HeaderFeedFrom, pos)
		return s.headOfSubscription(c)
	}
	release, err := s.acquireSubscription(c)
	if err != nil {
		return err
	}
	defer release()
	p, leave := s.feedPollers.join(feed.String(), c.Request().Context(), s.cfg.SubscribePoll, s.watchFeeds(), s.feedProbe(feed))
	defer leave()
	// Positions are opaque tokens, so whether the poller has seen more
	// than this subscriber is told by order in time, not by position:
	// readFrom is the poller's state when the subscriber's latest read
	// began, caughtUp that of its latest read that reached the feed's end.
	// Any change of the poller's since may be an event that read missed.
	readFrom, _, _ := p.watch() // taken before the first page is read
	page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: pos, Limit: s.cfg.FeedPageSize, MaxBytes: s.cfg.MaxPageBytes})
	if err != nil {
		return err
	}
	first := &page
	var caughtUp <-chan struct{}
	shared := func() (<-chan struct{}, bool, error) {
		changed, _, _ := p.watch()
		return changed, changed != caughtUp, p.err()
	}
	c.Response().Header().Set(HeaderFeedFrom, pos)
	id, _ := lastEventID(c.Request()) // checked by feedFrom
	announce := c.QueryParam("from") == "now" && id == ""
	return s.follow(c, nil, shared, func(ctx context.Context, sw *streamWriter, sse bool) (int, error) {
		if announce && sse {
			announce = false
			if err := sw.append(appendMessage(nil, true, []byte(pos), nil)); err != nil {
				return 0, err
			}
			if err := sw.flush(); err != nil { // now: the client may leave before any event
				return 0, err
			}
		}
		if first == nil {
			readFrom, _, _ = p.watch()
		}
		n, _, err := s.sendFeed(ctx, sw, feed, &pos, sse, first, s.cfg.FeedPageSize, s.cfg.Heartbeat)
		first = nil
		if err == nil {
			caughtUp = readFrom
		}
		return n, err
	})
}

// watchFeeds is the wake-up of feed pollers: the store says a feed may
// have moved here (log.FeedWatcher); nil if the store cannot tell.
func (s *Server) watchFeeds() func() (<-chan struct{}, func()) {
	if w, ok := s.store.(log.FeedWatcher); ok {
		return w.WatchFeeds
	}
	return nil
}

// feedProbe is the shared poller of feed's subscriptions: it follows the
// feed from its end when the poller starts (FeedEnd) and publishes a
// count of the changes it saw: its start, then each probe that read new
// events. Positions are opaque, so subscribers compare nothing with it:
// one that began its latest read before a change reads again (its start
// covers the events committed before the poller followed the feed).
func (s *Server) feedProbe(feed log.Feed) probeFunc[uint64] {
	var (
		at      string
		changes uint64
		started bool
	)
	return func(ctx context.Context) (uint64, bool, error) {
		before := changes
		if !started {
			end, err := s.feeds.FeedEnd(ctx, feed)
			if err != nil {
				return changes, false, err
			}
			at, started = end, true
			changes++
		}
		found := false
		for {
			page, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: at, Limit: s.cfg.FeedPageSize, MaxBytes: s.cfg.MaxPageBytes})
			if err != nil && changes == before {
				return changes, false, err
			}
			if err != nil {
				return changes, true, nil // publish what was seen; go on next time
			}
			if len(page.Events) > 0 && !found {
				changes, found = changes+1, true // one change per probe
			}
			from := at
			at = page.Next
			// A page that moved nothing is as good as the end: never spin.
			if page.AtEnd || len(page.Events) == 0 && page.Next == from {
				return changes, changes != before, nil
			}
		}
	}
}

// sendFeed writes the events of feed after *pos (SSE messages or NDJSON
// lines), a page at a time (the next read while this one is written),
// starting with first if set (a page already read from *pos), until a
// page is at the end of the feed: it returns with that page's
// CompleteUpTo. *pos follows what was written: each event's position, and
// last the page's Next. A page holds at most limit events, and fewer when
// the events seen so far are large: pages are sized to about MaxPageBytes,
// so the two pages in memory stay near twice that whatever the events
// weigh.
//
// With every > 0 (a subscription), a read that has sent nothing for that
// long sends what it holds, after the position it reached (SSE: an id
// alone; NDJSON: a heartbeat line): a category or type feed catching up
// over a long stretch of other events would otherwise write nothing
// for as long as it scans, its connection idle to proxies, and a client
// reconnecting would scan the stretch again from its last event.
func (s *Server) sendFeed(ctx context.Context, sw *streamWriter, feed log.Feed, pos *string, sse bool, first *log.FeedPage, limit int, every time.Duration) (sent int, complete time.Time, err error) {
	return s.sendFeedPages(ctx, sw, feed, pos, sse, first, limit, every, nil)
}

// sendFeedPages is sendFeed reading its pages from pages, when not nil,
// which must start at *pos (first must then be nil).
func (s *Server) sendFeedPages(ctx context.Context, sw *streamWriter, feed log.Feed, pos *string, sse bool, first *log.FeedPage, limit int, every time.Duration, pages log.FeedPages) (sent int, complete time.Time, err error) {
	type result struct {
		page log.FeedPage
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		line  []byte
		enc   encoder
		next  *fanout.Future[result]
		size  int64 // bytes of the events read so far
		count int64
		// flushed is when the client last got something from this read
		// (every), told the position told (SSE).
		flushed = time.Now()
		told    string
	)
	defer func() {
		cancel()
		if next != nil {
			next.Get() // the read ahead ends with ctx; never leave it running (nor its panic unraised)
		}
	}()
	// The next page is read while this one is written (a catch-up read is
	// otherwise a round trip to Cassandra per page with the connection
	// idle); at most one read is ahead. Its panic is raised on this
	// goroutine (Get), where the HTTP layer answers 500 or cuts the
	// stream: on its own it ended the process.
	read := func(after string) *fanout.Future[result] {
		// The first page is no larger than a default one (events may be
		// up to 1 MiB each); later ones follow the sizes seen.
		n := min(limit, s.cfg.FeedPageSize)
		if count > 0 {
			n = int(min(int64(limit), max(1, int64(s.cfg.MaxPageBytes)*count/size)))
		}
		return fanout.Start(func() result {
			if pages != nil {
				p, err := pages.Next(n, s.cfg.MaxPageBytes) // reads on from after
				return result{p, err}
			}
			p, err := s.feeds.ReadFeed(ctx, log.FeedRead{Feed: feed, After: after, Limit: n, MaxBytes: s.cfg.MaxPageBytes})
			return result{p, err}
		})
	}
	for {
		var page log.FeedPage
		switch {
		case first != nil:
			page, first = *first, nil
		case next != nil:
			f := next
			next = nil // collected: the deferred Get must not raise its panic again
			r := f.Get()
			if page, err = r.page, r.err; err != nil {
				return sent, complete, err
			}
		default:
			r := read(*pos).Get()
			if page, err = r.page, r.err; err != nil {
				return sent, complete, err
			}
		}
		for i := range page.Events {
			e := &page.Events[i]
			size += int64(len(e.Data) + len(e.Metadata) + len(e.Type) + len(e.Stream) + len(e.Position) + 64)
		}
		count += int64(len(page.Events))
		from := *pos
		if !page.AtEnd && (len(page.Events) > 0 || page.Next != from) {
			next = read(page.Next)
		}
		for i := range page.Events {
			if s.draining.Load() {
				return sent, complete, errDraining
			}
			if err := ctx.Err(); err != nil {
				return sent, complete, err // the client left, or its key no longer authenticates
			}
			e := &page.Events[i]
			if sse {
				line = appendMessage(line[:0], sse, []byte(e.Position), func(b []byte) []byte { return enc.feedEvent(b, e) })
				err = sw.append(line)
			} else {
				err = sw.appendLine(func(b []byte) []byte { return enc.feedEvent(b, e) })
			}
			if err != nil {
				return sent, complete, err
			}
			*pos, told = e.Position, e.Position
			sent++
		}
		*pos, complete = page.Next, page.CompleteUpTo
		// A page that moved nothing is as good as the end: never spin.
		if page.AtEnd || len(page.Events) == 0 && page.Next == from {
			return sent, complete, nil
		}
		if every > 0 && time.Since(flushed) >= every {
			switch {
			case sse && told != *pos:
				told = *pos
				err = sw.append(appendMessage(line[:0], true, []byte(*pos), nil))
			case !sse && len(page.Events) == 0:
				err = sw.append([]byte("\n"))
			}
			if err == nil {
				err = sw.flush()
			}
			if err != nil {
				return sent, complete, err
			}
			flushed = time.Now()
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

// feedFrom is the position token a feed read starts after:
// Last-Event-ID (if withLastEventID, for subscriptions; it wins, as it is
// where a reconnecting client stopped), else ?from=: a token, empty for
// the start, or "now" for the feed's end (only events committed from
// about now on follow). Tokens are checked by the store when read; the
// store is asked for "now" only after every other check.
func (s *Server) feedFrom(ctx context.Context, r *http.Request, feed log.Feed, withLastEventID bool) (string, error) {
	if withLastEventID {
		if id, err := lastEventID(r); err != nil || id != "" {
			return id, err
		}
	}
	from, err := stringParam(r.URL.Query(), "from")
	if err != nil || from != "now" {
		return from, err
	}
	return s.feeds.FeedEnd(ctx, feed)
}

// feedDirection refuses a direction other than forward: a feed is read in
// commit order only (its positions are a forward scan of the shard logs,
// and there is no backward one), and a direction the server ignored would
// answer a "newest first" request oldest first without a word.
func feedDirection(q url.Values) error {
	switch d, err := valueParam(q, "direction"); {
	case err != nil:
		return err
	case d == "" || d == "forward":
		return nil
	case d == "backward":
		return invalidRequest("feeds are read forward only, in commit order: direction=backward is not supported " +
			"(a stream reads backward: GET /v1/streams/{stream}/events?direction=backward)")
	}
	return invalidRequest(`direction must be "forward": feeds are read forward only, in commit order`)
}
