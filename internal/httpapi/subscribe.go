package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/fanout"
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
// heartbeats). A stream that does not exist yet is waited for. Memory is
// bounded by back-pressure (follow).
func (s *Server) subscribe(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionRead, string(stream)); err != nil {
		return err
	}
	next, err := subscribeFrom(c.Request())
	if err != nil {
		return err
	}
	if isHead(c) {
		return s.headOfSubscription(c) // a stream not there yet is waited for: 200 too
	}
	release, err := s.acquireSubscription(c)
	if err != nil {
		return err
	}
	defer release()
	var wake <-chan struct{}
	if w, ok := s.store.(log.Watcher); ok {
		ch, stop := w.Watch(stream)
		defer stop()
		wake = ch
	}
	// Appends through other instances: one head read per SubscribePoll
	// for all of this stream's subscribers.
	p, leave := s.streamPollers.join(string(stream), c.Request().Context(), s.cfg.SubscribePoll, nil, func(ctx context.Context) (int64, bool, error) {
		info, err := s.store.Info(ctx, stream)
		if errors.Is(err, log.ErrStreamNotFound) {
			return 0, true, nil
		}
		return info.Version, err == nil, err
	})
	defer leave()
	shared := func() (<-chan struct{}, bool, error) {
		changed, head, known := p.watch()
		return changed, known && head >= next, p.err()
	}
	var line, id []byte
	return s.follow(c, wake, shared, func(ctx context.Context, sw *streamWriter, sse bool) (int, error) {
		sent := 0
		err := s.store.ReadStream(ctx, log.ReadRange{Stream: stream, From: next, Borrowed: true}, func(e *log.RecordedEvent) error {
			if s.draining.Load() {
				return errDraining
			}
			id = strconv.AppendInt(id[:0], e.Version, 10)
			line = appendMessage(line[:0], sse, id, func(b []byte) []byte { return appendEvent(b, e) })
			next = e.Version + 1
			sent++
			return sw.append(line)
		})
		if errors.Is(err, log.ErrStreamNotFound) {
			err = nil // not yet: a subscription waits for the first event
		}
		if cap(line) > keepBytes {
			// About to wait, maybe for long: a large event's buffer is
			// not kept for the subscription's lifetime.
			line = nil
		}
		return sent, err
	})
}

// follow serves a live subscription, as Server-Sent Events (the default)
// or, with Accept: application/x-ndjson, one event per line (blank lines
// are heartbeats). It calls send, which writes what is new since its last
// call (through sw, in the framing sse says) and returns how many events
// it wrote, then waits for a wake-up from this instance (wake, may be
// nil), for the shared poller to see something the subscriber has not
// read (shared: the channel of the poller's next change, whether the
// subscriber is behind what the poller last saw, and the poller's error:
// a poller whose loop panicked ends its subscriptions, 500 internal
// before the response started and a cut stream after), or the client's departure,
// sending a heartbeat when idle, and calls send again. An idle subscriber
// reads nothing from the store itself.
//
// Memory is bounded: send writes events from the store's read straight to
// the connection, so a slow client holds back the read (back-pressure)
// rather than queueing events on the server; a client that stops reading
// is dropped after the write timeout. A draining server ends the response
// cleanly, at once also when the subscription is idle, as the client
// resumes from its last id elsewhere; so does a key revoked or expired
// meanwhile (whileKeyValid), and the client's reconnection is refused.
func (s *Server) follow(c *echo.Context, wake <-chan struct{}, shared func() (<-chan struct{}, bool, error), send func(ctx context.Context, sw *streamWriter, sse bool) (int, error)) error {
	if _, _, err := shared(); err != nil {
		return err // its poller broke before the response started
	}
	sse := !wantsNDJSON(c.Request())
	ctype := MediaTypeEventStream
	if !sse {
		ctype = MediaTypeNDJSON
	}
	ctx, valid, stop := s.whileKeyValid(c)
	defer stop()
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, ctype, s.cfg.WriteTimeout)
	sw.noReadDeadline(c.Request())
	c.Response().Header().Set("Cache-Control", "no-store")

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
	var readFor <-chan struct{}
	for first := true; ; first = false {
		if !first && !valid() {
			_ = sw.flush()
			return nil // a clean end: the reconnection is refused
		}
		sent, err := send(ctx, sw, sse)
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
	wait:
		for {
			// One read per change the poller saw: should the read not
			// reach what the poller saw, wait for its next change rather
			// than read again at once.
			changed, behind, err := shared()
			if err != nil {
				return s.failStream(c, sw, err) // started: cut
			}
			if behind && changed != readFor {
				readFor = changed
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-s.drained:
				return nil // a clean end: the client resumes elsewhere
			case <-wake:
				break wait
			case <-changed:
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
		if s.draining.Load() {
			return nil
		}
	}
}

// keyCheckEvery is how often a live subscription checks, while it reads,
// that its API key still authenticates.
const keyCheckEvery = time.Second

// whileKeyValid returns the context of c's request, ended as well once
// the request's API key no longer authenticates (revoked or expired:
// Authenticator.Authenticate, which every instance refreshes within its
// refresh interval), with the cause auth.ErrInvalidToken (keyRevoked): a
// live subscription or a long read (a replay, a feed stream) outlives the
// check of its request, and would otherwise stream on for as long as its
// client stays, or its data lasts. valid checks now (follow asks before
// each read), and so does a goroutine every keyCheckEvery once the read
// has lasted that long, as a read may go on for long; stop releases it.
func (s *Server) whileKeyValid(c *echo.Context) (ctx context.Context, valid func() bool, stop func()) {
	r, k := c.Request(), keyOf(c)
	if s.cfg.Auth == nil || k == nil {
		return r.Context(), func() bool { return true }, func() {}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	// Not c in the goroutine: echo pools it once the handler returns.
	authorization, name, route := r.Header.Get(echo.HeaderAuthorization), k.Name, routeLabel(c)
	var once sync.Once // the goroutine and follow may both find it
	valid = func() bool {
		if _, err := s.cfg.Auth.Authenticate(ctx, authorization); err != nil && ctx.Err() == nil {
			once.Do(func() {
				if errors.Is(err, auth.ErrInvalidToken) {
					s.log.InfoContext(ctx, "stream ended: its key no longer authenticates", "route", route, "key", name, "err", err)
					cancel(auth.ErrInvalidToken)
					return
				}
				// The keys cannot be read (auth.ErrKeysUnavailable): as a
				// new request would be, the stream is refused, 503 rather
				// than 401, which clients take for final.
				s.log.WarnContext(ctx, "stream ended: its key cannot be checked", "route", route, "key", name, "err", err)
				cancel(err)
			})
		}
		return ctx.Err() == nil
	}
	// The watch starts once the read has lasted keyCheckEvery: a short
	// read, such as the state load before a command, pays no goroutine.
	// Its panic ends the read (the cause of ctx, which keyRevoked raises)
	// and is raised by stop, which waits for it: on its own goroutine it
	// ended the process.
	var (
		watched  = make(chan struct{})
		panicked *fanout.Panic
	)
	watch := time.AfterFunc(keyCheckEvery, func() {
		defer close(watched)
		panicked = fanout.Catch(func() {
			t := time.NewTicker(keyCheckEvery)
			defer t.Stop()
			for ctx.Err() == nil {
				valid()
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
		})
		if panicked != nil {
			cancel(panicked)
		}
	})
	return ctx, valid, func() {
		cancel(nil)
		if !watch.Stop() { // started: it ends with ctx
			<-watched
			fanout.Raise(panicked)
		}
	}
}

// keyRevoked returns err, or the reason ctx (from whileKeyValid) ended
// when its key no longer authenticates (auth.ErrInvalidToken) or cannot be
// checked (log.ErrUnavailable): a long read cut for it is 401 or 503 if
// nothing was sent yet, and is cut off, never ended as if complete,
// otherwise (failStream).
func keyRevoked(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if p, ok := cause.(*fanout.Panic); ok && err != nil {
		panic(p) // the key check's: the read is a 500, not a client gone
	}
	if err != nil && (errors.Is(cause, auth.ErrInvalidToken) || errors.Is(cause, log.ErrUnavailable)) {
		return cause
	}
	return err
}

// appendMessage appends one subscription message: the event's JSON (which
// event appends; it is compact, so one line) as an NDJSON line, or as an
// SSE message whose id: is id. Without an event (SSE only), the message
// only sets the client's last event id.
func appendMessage(b []byte, sse bool, id []byte, event func([]byte) []byte) []byte {
	if !sse {
		return append(event(b), '\n')
	}
	b = append(b, "id: "...)
	b = append(b, id...)
	if event == nil {
		return append(b, "\n\n"...)
	}
	b = append(b, "\ndata: "...)
	b = event(b)
	return append(b, "\n\n"...)
}

// subscribeFrom is the first version to send: after Last-Event-ID when the
// client resumes, else ?from= (default 1).
func subscribeFrom(r *http.Request) (int64, error) {
	id, err := lastEventID(r)
	if err != nil {
		return 0, err
	}
	if id != "" {
		v, ok := canonicalInt(id)
		// The next version, v+1, must not overflow.
		if !ok || v < 0 || v == math.MaxInt64 {
			return 0, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "Last-Event-ID must be a stream version"}
		}
		return v + 1, nil
	}
	from, err := valueParam(r.URL.Query(), "from")
	if err != nil || from == "" {
		return 1, err
	}
	v, ok := canonicalInt(from)
	if !ok || v < 1 || v == math.MaxInt64 {
		return 0, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "from must be a version >= 1"}
	}
	return v, nil
}
