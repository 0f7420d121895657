package httpapi

import (
	"net/http"
	"strconv"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// state serves GET /v1/streams/{stream}/state?at=V or ?at_time=T: the
// aggregate load in one round trip,
//
//	{"stream","version","snapshot":{"version","created_at","state"}|null,"events":[...]}
//
// where events are those after the snapshot up to V (default: the head),
// or up to the last version committed at or before T (log.LoadStateAt: a
// stream with no event by T is 404 stream_not_found).
// The events are streamed into the response as they are read, and checked
// to be exactly the versions snapshot+1..V: a gap cuts the response rather
// than hand the client a wrong state. A load of more than MaxPageSize
// events is a long read (acquireLongRead), refused before anything is sent.
// A key revoked or expired while the load reads ends it, 401 if nothing
// was sent yet (the key is checked once more before the answer), cut off
// otherwise.
func (s *Server) state(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionRead, string(stream)); err != nil {
		return err
	}
	at, err := intParam(c.QueryParams(), "at", 0, 0)
	if err != nil {
		return err
	}
	atTime, err := timeParam(c.QueryParams(), "at_time")
	if err != nil {
		return err
	}
	if c.QueryParams().Has("at") && !atTime.IsZero() {
		return invalidRequest("give at or at_time, not both")
	}
	if isHead(c) {
		// What the GET refuses before its first byte: a stream without
		// events, at above its head, at_time before its first event.
		if err := log.CheckState(c.Request().Context(), s.store, stream, at, atTime); err != nil {
			return err
		}
		return headAnswer(c, echo.MIMEApplicationJSON)
	}
	// A load lasts as long as its tail: as a replay, it ends when its key
	// is revoked or expires meanwhile (whileKeyValid), and it checks the
	// key once more before it answers, so a load whose last events came
	// after the revocation, between two checks, is not answered either.
	ctx, valid, stop := s.whileKeyValid(c)
	defer stop()
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, echo.MIMEApplicationJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline(c.Request())
	var (
		line  []byte
		enc   encoder
		first = true
		held  = func() {} // releases the long read slot, if taken
	)
	defer func() { held() }()
	begin := func(st log.State) error {
		if !st.TailEmpty() && st.Tail.To-st.Tail.From >= int64(s.cfg.MaxPageSize) {
			// As long as a replay: a long read. A short one, the
			// aggregate load of a command, is not held back by them.
			release, err := s.acquireLongRead(c)
			if err != nil {
				return err
			}
			held = release
		}
		b := appendString([]byte(`{"stream":`), string(st.Stream))
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, st.Version, 10)
		b = append(b, `,"snapshot":`...)
		if st.Snapshot == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, `{"version":`...)
			b = strconv.AppendInt(b, st.Snapshot.Version, 10)
			if !st.Snapshot.CreatedAt.IsZero() {
				b = append(b, `,"created_at":`...)
				b = appendTime(b, st.Snapshot.CreatedAt)
			}
			b = append(b, `,"state":`...)
			b = appendRaw(b, st.Snapshot.State)
			b = append(b, '}')
		}
		b = append(b, `,"events":[`...)
		return sw.append(b)
	}
	each := func(e *log.RecordedEvent) error {
		line = line[:0]
		if !first {
			line = append(line, ',')
		}
		first = false
		line = enc.event(line, e)
		return sw.append(line)
	}
	if atTime.IsZero() {
		err = log.ReadState(ctx, s.store, stream, at, begin, each)
	} else {
		var st log.State
		if st, err = log.LoadStateAt(ctx, s.store, stream, atTime); err == nil {
			err = log.ReadTail(ctx, s.store, st, begin, each)
		}
	}
	if err == nil && !valid() {
		err = ctx.Err()
	}
	if err != nil {
		return s.failStream(c, sw, keyRevoked(ctx, err))
	}
	if err := sw.append([]byte("]}\n")); err != nil {
		return s.failStream(c, sw, err)
	}
	if err := sw.end(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}
