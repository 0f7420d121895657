package httpapi

import (
	"fmt"
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
// than hand the client a wrong state.
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
	ctx := c.Request().Context()
	var st log.State
	switch {
	case c.QueryParams().Has("at") && !atTime.IsZero():
		return invalidRequest("give at or at_time, not both")
	case !atTime.IsZero():
		st, err = log.LoadStateAt(ctx, s.store, stream, atTime)
	default:
		st, err = log.LoadState(ctx, s.store, stream, at)
	}
	if err != nil {
		return err
	}
	sw := newStreamWriter(c.Response(), http.StatusOK, echo.MIMEApplicationJSON, s.cfg.WriteTimeout)
	sw.noReadDeadline()
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
	if err := sw.append(b); err != nil {
		return s.failStream(c, sw, err)
	}
	want := st.Tail.From
	if !st.TailEmpty() {
		var line []byte
		err = s.store.ReadStream(ctx, st.Tail, func(e *log.RecordedEvent) error {
			if e.Version != want {
				return fmt.Errorf("state of %s: read version %d, want %d", stream, e.Version, want)
			}
			line = line[:0]
			if want > st.Tail.From {
				line = append(line, ',')
			}
			want++
			line = appendEvent(line, e)
			return sw.append(line)
		})
		if err == nil && want != st.Tail.To+1 {
			err = fmt.Errorf("state of %s: tail ended at version %d, want %d", stream, want-1, st.Tail.To)
		}
		if err != nil {
			return s.failStream(c, sw, err)
		}
	}
	if err := sw.append([]byte("]}\n")); err != nil {
		return s.failStream(c, sw, err)
	}
	if err := sw.flush(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}
