package httpapi

import (
	"fmt"
	"net/http"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// Every GET route answers HEAD (RFC 9110 §9.3.2; the router's
// AutoHandleHEAD) as its GET would, without the body: the handler runs and
// its body is counted, not sent. The routes whose GET streams for as long
// as the data or the client lasts, or is a long read (a stream's NDJSON
// replay, a state load, a feed read, a live subscription), answer HEAD
// with headAnswer instead once the request is checked as the GET's read
// would check it before its first byte (the stream's head or the version
// at a moment: log.CheckState, headOfReplay; a feed position against the
// logs' ends: log.FeedStore.CheckFeed), without reading any event or
// snapshot or taking a long read or subscription slot: a HEAD costs what
// its checks cost, never a replay. On a server shutting down those whose
// GET would be refused or end at its first event (a subscription, an
// NDJSON replay or feed read) answer its 503.

// isHead reports whether c is a HEAD request (served by its GET route).
func isHead(c *echo.Context) bool { return c.Request().Method == http.MethodHead }

// headAnswer answers a HEAD of a streaming route: 200 with the content
// type its GET would start with, and without Content-Length (the GET's
// length is not known: it is streamed). The status goes to the writer
// beneath the router's HEAD writer, which would otherwise announce the
// length of the nothing written, 0.
func headAnswer(c *echo.Context, contentType string) error {
	w := c.Response()
	if _, ok := w.(*echo.Response); !ok {
		if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
			w = u.Unwrap()
		}
	}
	w.Header().Set(echo.HeaderContentType, contentType)
	w.WriteHeader(http.StatusOK)
	return nil
}

// headOfReplay answers a HEAD of a stream's NDJSON replay of rr as its
// GET answers before its first byte: 404 stream_not_found when the stream
// has no events, or none committed by rr.UntilTime (one head read,
// HeadVersion, or VersionAt), else 200 (on a server shutting down: 503
// when the range holds an event, as its GET, which ends at its first
// event; an empty range's GET has none to end at and answers 200). No
// event is read.
func (s *Server) headOfReplay(c *echo.Context, rr log.ReadRange) error {
	ctx := c.Request().Context()
	var (
		v   int64
		err error
	)
	if rr.UntilTime.IsZero() {
		v, err = s.store.HeadVersion(ctx, rr.Stream)
	} else if v, err = s.store.VersionAt(ctx, rr.Stream, rr.UntilTime); err == nil && v == 0 {
		err = fmt.Errorf("stream %s: %w", rr.Stream, log.ErrStreamNotYet)
	}
	if err != nil {
		return err
	}
	if _, held := rr.Cut(v); held && s.draining.Load() {
		return shuttingDown()
	}
	return headAnswer(c, MediaTypeNDJSON)
}

// headOfSubscription answers a HEAD of a live subscription with the headers
// its GET starts with (follow), or, on a server shutting down, the 503 the
// GET answers whatever slots are free (acquireSubscription).
func (s *Server) headOfSubscription(c *echo.Context) error {
	if s.draining.Load() {
		return shuttingDown()
	}
	ctype := MediaTypeEventStream
	if wantsNDJSON(c.Request()) {
		ctype = MediaTypeNDJSON
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return headAnswer(c, ctype)
}
