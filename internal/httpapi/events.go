package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// appendEvents serves POST /v1/streams/{stream}/events: 201 with the
// versions of the new events, or 200 with the original versions when the
// append is a retry of a stored one.
func (s *Server) appendEvents(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionAppend, string(stream)); err != nil {
		return err
	}
	if err := requireMediaType(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	body, err := decodeAppend(c.Request().Body, s.decodeOptions(false))
	if err != nil {
		return err
	}
	res, err := s.append(c.Request().Context(), log.AppendRequest{Stream: stream, Expected: body.Expected, Events: s.withTraceparent(c.Request(), body.Events)})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	c.Response().Header().Set(echo.HeaderLocation,
		"/v1/streams/"+string(stream)+"/events?from="+strconv.FormatInt(res.FirstVersion, 10))
	return c.Blob(status, echo.MIMEApplicationJSON, appendAppendResult(make([]byte, 0, 160+64*len(res.Events)), res))
}

// append appends req, counting the outcome. The store validates req
// (AppendRequest.Validate, which also generates missing ids). The write is
// detached from the client's cancellation and bounded by AppendTimeout; an
// interrupted write is reported as an unknown outcome, never as "not
// applied".
func (s *Server) append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AppendTimeout)
	defer cancel()
	res, err := s.store.Append(ctx, req)
	if err != nil && !errors.Is(err, log.ErrUnavailable) && !errors.Is(err, log.ErrOutcomeUnknown) &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = fmt.Errorf("%w: %w", log.ErrOutcomeUnknown, err)
	}
	s.metrics.countAppend(len(req.Events), res.Duplicate, err)
	return res, err
}

// readEvents serves GET /v1/streams/{stream}/events: a JSON page, or with
// Accept: application/x-ndjson the whole range as a stream. until_time
// limits either to the events committed at or before it; a stream with none
// by then is 404 stream_not_found, as the read answered at that moment.
func (s *Server) readEvents(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionRead, string(stream)); err != nil {
		return err
	}
	q, err := parseReadQuery(c.QueryParams(), s.cfg.DefaultPageSize, s.cfg.MaxPageSize)
	if err != nil {
		return err
	}
	rr := log.ReadRange{Stream: stream, From: q.From, To: q.To, Backward: q.Backward, UntilTime: q.UntilTime}
	if wantsNDJSON(c.Request()) {
		if isHead(c) {
			return s.headOfReplay(c, rr)
		}
		release, err := s.acquireLongRead(c)
		if err != nil {
			return err
		}
		defer release()
		return s.replay(c, rr)
	}
	return s.page(c, rr, q.Limit)
}

// replay streams every event of rr as NDJSON, one event per line, in
// order, flushing in small batches; the page limit does not apply.
func (s *Server) replay(c *echo.Context, rr log.ReadRange) error {
	// A replay lasts as long as its stream and its client: it is cut
	// once its key is revoked or expires meanwhile.
	ctx, _, stop := s.whileKeyValid(c)
	defer stop()
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, MediaTypeNDJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline(c.Request())
	sw.pipeline()
	defer sw.wait() // a panic too leaves the response only once the batch in flight is written
	var enc encoder
	rr.Borrowed = true // each event is encoded before the next is read
	err := s.store.ReadStream(ctx, rr, func(e *log.RecordedEvent) error {
		if s.draining.Load() {
			return errDraining
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return sw.appendLine(func(b []byte) []byte { return enc.event(b, e) })
	})
	if err != nil {
		return s.failStream(c, sw, keyRevoked(ctx, err))
	}
	if err := sw.end(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}

// page writes {"stream","events":[...],"next"} without holding the page:
// events are encoded as they arrive. One event past the limit is read to
// learn whether another page follows; "next" is its version: the next
// page's from (forward) or to (backward), or null at the end.
func (s *Server) page(c *echo.Context, rr log.ReadRange, limit int) error {
	ctx := c.Request().Context()
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, echo.MIMEApplicationJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline(c.Request())
	rr.Limit = limit + 1
	rr.Borrowed = true // each event is encoded before the next is read
	var (
		b    = appendString([]byte(`{"stream":`), string(rr.Stream))
		enc  encoder
		n    int
		size int
		next int64
	)
	b = append(b, `,"events":[`...)
	err := s.store.ReadStream(ctx, rr, func(e *log.RecordedEvent) error {
		// A page ends at its limit, or once it holds MaxPageBytes.
		if n == limit || (n > 0 && size >= s.cfg.MaxPageBytes) {
			next = e.Version
			return log.ErrStop
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = enc.event(b, e)
		size += len(b)
		err := sw.append(b)
		b = b[:0]
		return err
	})
	if errors.Is(err, log.ErrStop) {
		err = nil
	}
	if err != nil {
		return s.failStream(c, sw, err)
	}
	b = append(b, `],"next":`...)
	if next > 0 {
		b = strconv.AppendInt(b, next, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "}\n"...)
	if err := sw.append(b); err != nil {
		return s.failStream(c, sw, err)
	}
	if err := sw.end(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}

// failStream ends a streamed response after err (see streamWriter.fail),
// logging the cause when the stream had to be cut.
func (s *Server) failStream(c *echo.Context, sw *streamWriter, err error) error {
	if sw.started {
		level := slog.LevelWarn
		if errors.Is(err, errDraining) || errors.Is(err, context.Canceled) || errors.Is(err, auth.ErrInvalidToken) {
			level = slog.LevelInfo
		}
		attrs := []any{"method", c.Request().Method, "route", routeLabel(c), "error", err}
		if corrupt := s.countCorrupt(err); corrupt != nil {
			level, attrs = slog.LevelError, append(attrs, corrupt...)
		}
		s.log.Log(c.Request().Context(), level, "stream cut", attrs...)
	}
	return sw.fail(err)
}
