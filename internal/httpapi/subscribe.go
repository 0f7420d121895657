package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// MediaTypeEventStream is Server-Sent Events.
const MediaTypeEventStream = "text/event-stream"

// subscribe serves GET /v1/streams/{stream}/subscribe: the stream's events
// from ?from= (default 1), or after the version in Last-Event-ID, then
// every new event as it is appended, until the client leaves or the server
// shuts down. As Server-Sent Events (the default; each event's id: is its
// version, so a reconnecting EventSource resumes where it stopped) or, with
// Accept: application/x-ndjson, one event per line (blank lines are
// heartbeats). A stream that does not exist yet is waited for.
//
// Memory is bounded: events go from the store's read straight to the
// connection, so a slow client holds back the read (back-pressure) rather
// than queueing events on the server; a client that stops reading is
// dropped after the write timeout.
func (s *Server) subscribe(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	next, err := subscribeFrom(c.Request())
	if err != nil {
		return err
	}
	sse := !wantsNDJSON(c.Request())
	ctype := MediaTypeEventStream
	if !sse {
		ctype = MediaTypeNDJSON
	}
	ctx := c.Request().Context()
	sw := newStreamWriter(c.Response(), http.StatusOK, ctype, s.cfg.WriteTimeout)
	sw.noReadDeadline()
	c.Response().Header().Set("Cache-Control", "no-store")

	var wake <-chan struct{}
	if w, ok := s.store.(log.Watcher); ok {
		ch, stop := w.Watch(stream)
		defer stop()
		wake = ch
	}
	poll := time.NewTicker(s.cfg.SubscribePoll)
	defer poll.Stop()
	heartbeat := time.NewTimer(s.cfg.Heartbeat)
	defer heartbeat.Stop()

	if sse {
		// Tell EventSource how soon to reconnect, and open the stream now.
		if err := sw.append([]byte("retry: 1000\n\n")); err != nil {
			return err
		}
	}
	if err := sw.flush(); err != nil {
		return nil // the client left
	}
	var line []byte
	for {
		sent := 0
		err := s.store.ReadStream(ctx, log.ReadRange{Stream: stream, From: next}, func(e *log.RecordedEvent) error {
			if s.draining.Load() {
				return errDraining
			}
			line = encodeSubscribed(line[:0], e, sse)
			next = e.Version + 1
			sent++
			return sw.append(line)
		})
		if err == nil && sent > 0 {
			err = sw.flush()
			heartbeat.Reset(s.cfg.Heartbeat)
		}
		switch {
		case errors.Is(err, errDraining), ctx.Err() != nil:
			_ = sw.flush()
			return nil // a clean end: the client resumes from its last id
		case err != nil:
			return s.failStream(c, sw, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		case <-heartbeat.C:
			hb := "\n"
			if sse {
				hb = ": heartbeat\n\n"
			}
			if err := sw.append([]byte(hb)); err != nil {
				return nil
			}
			if err := sw.flush(); err != nil {
				return nil
			}
			heartbeat.Reset(s.cfg.Heartbeat)
		}
		if s.draining.Load() {
			return nil
		}
	}
}

// encodeSubscribed appends one event as an SSE message (id: version, data:
// the event's JSON, which is compact and so one line) or an NDJSON line.
func encodeSubscribed(b []byte, e *log.RecordedEvent, sse bool) []byte {
	if !sse {
		return append(appendEvent(b, e), '\n')
	}
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, "\ndata: "...)
	b = appendEvent(b, e)
	return append(b, "\n\n"...)
}

// subscribeFrom is the first version to send: after Last-Event-ID when the
// client resumes, else ?from= (default 1).
func subscribeFrom(r *http.Request) (int64, error) {
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); id != "" {
		v, err := strconv.ParseInt(id, 10, 64)
		if err != nil || v < 0 {
			return 0, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "Last-Event-ID must be a stream version"}
		}
		return v + 1, nil
	}
	from := r.URL.Query().Get("from")
	if from == "" {
		return 1, nil
	}
	v, err := strconv.ParseInt(from, 10, 64)
	if err != nil || v < 1 {
		return 0, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "from must be a version >= 1"}
	}
	return v, nil
}
