package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ReplayOptions select the range of a replay.
type ReplayOptions struct {
	// From is the lowest version to replay. Default 1.
	From int64
	// To is the highest version to replay, inclusive. Default (0): the
	// head, as of each request (a resumed replay also sees events appended
	// since it started).
	To int64
	// Backward replays newest first, starting at To.
	Backward bool
	// UntilTime, if set, limits the replay to the events committed at or
	// before it, also when it resumes: the stream as it was at that moment.
	// A stream with no event by then yields ErrStreamNotFound.
	UntilTime time.Time
}

// Replay returns every event of stream in the range, in order, streamed
// from the server as NDJSON without a page limit and without holding the
// range in memory. Iteration ends after the last event, or after yielding
// one error, or when the loop breaks (which closes the connection).
//
// If the stream breaks off mid-way (the server cuts a replay that fails,
// a proxy or the network drops the connection), Replay resumes from the
// version after the last one it yielded, so every event is yielded exactly
// once and in order; versions are checked to be consecutive. Failed
// attempts back off as RetryPolicy says; MaxAttempts bounds the attempts
// in a row that yield no event. A stream without events yields
// ErrStreamNotFound.
func (c *Client) Replay(ctx context.Context, stream string, opts ReplayOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		rp := &replay{c: c, ctx: ctx, stream: stream, opts: opts, yield: yield}
		if err := rp.run(); err != nil && !errors.Is(err, errStopped) {
			yield(Event{}, fmt.Errorf("eventlog: replay %s: %w", stream, err))
		}
	}
}

// errStopped: the consumer broke out of the loop.
var errStopped = errors.New("replay stopped by the consumer")

type replay struct {
	c      *Client
	ctx    context.Context
	stream string
	opts   ReplayOptions
	yield  func(Event, error) bool
	last   int64 // version of the last event yielded; 0: none yet
}

// run requests the remaining range until it is delivered in full.
func (rp *replay) run() error {
	return rp.c.resume(rp.ctx, func() (bool, error) {
		q, done := rp.remaining()
		if done {
			return false, nil
		}
		before := rp.last
		err := rp.attempt(q)
		return rp.last != before, err
	})
}

// resume runs attempt until it returns nil, errStopped or an error
// retrying cannot cure, backing off between attempts (RetryPolicy); it
// gives up after MaxAttempts attempts in a row without progress (nothing
// yielded), and does not retry at all with MaxAttempts 1.
func (c *Client) resume(ctx context.Context, attempt func() (progress bool, err error)) error {
	failed := 0 // attempts in a row that yielded nothing
	for {
		progress, err := attempt()
		if err == nil || errors.Is(err, errStopped) {
			return err
		}
		if !retryable(err) || ctx.Err() != nil || c.retry.MaxAttempts == 1 {
			return err
		}
		if progress {
			failed = 0 // back-off starts over
		} else if failed++; failed >= c.retry.MaxAttempts {
			return fmt.Errorf("%d attempts without progress: %w", failed, err)
		}
		if serr := sleep(ctx, c.retry.backoff(max(failed, 1))); serr != nil {
			return fmt.Errorf("%w: %w", serr, err)
		}
	}
}

// remaining is the query for the part of the range not yet yielded, or
// done when nothing is left.
func (rp *replay) remaining() (q url.Values, done bool) {
	from, to := max(rp.opts.From, 1), rp.opts.To
	if rp.last > 0 {
		if rp.opts.Backward {
			to = rp.last - 1
			if to < from {
				return nil, true
			}
		} else {
			from = rp.last + 1
			if to != 0 && from > to {
				return nil, true
			}
		}
	}
	q = url.Values{"from": {strconv.FormatInt(from, 10)}}
	if to != 0 {
		q.Set("to", strconv.FormatInt(to, 10))
	}
	if rp.opts.Backward {
		q.Set("direction", "backward")
	}
	setTime(q, "until_time", rp.opts.UntilTime)
	return q, false
}

// attempt streams one response, yielding its events. nil means the
// response ended cleanly: the range is complete.
func (rp *replay) attempt(q url.Values) error {
	r := &request{method: http.MethodGet, path: streamPath(rp.stream, "events"), query: q, accept: mediaNDJSON}
	res, err := rp.c.send(rp.ctx, r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	at := func() string { return fmt.Sprintf("after version %d", rp.last) }
	return rp.c.readEvents(rp.ctx, res.Body, rp.stream, at, func(ev Event) error {
		if err := rp.check(ev.Version); err != nil {
			return err
		}
		rp.last = ev.Version
		if !rp.yield(ev, nil) {
			return errStopped
		}
		return nil
	})
}

// check verifies that version follows the last one yielded.
func (rp *replay) check(v int64) error {
	want := rp.last + 1
	if rp.opts.Backward {
		want = rp.last - 1
	}
	if v < 1 || (rp.last > 0 && v != want) {
		return fmt.Errorf("server sent version %d after %d", v, rp.last)
	}
	return nil
}

// readEvents reads the NDJSON events of a replay or subscription body
// (readLines) and passes each, its Stream set, to handle; a line that
// does not decode is an error naming the position at() describes.
func (c *Client) readEvents(ctx context.Context, body io.Reader, stream string, at func() string, handle func(Event) error) error {
	return c.readLines(ctx, body, func(line []byte) error {
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decode event %s: %w", at(), err)
		}
		ev.Stream = stream
		return handle(ev)
	})
}

// readLines passes each non-blank NDJSON line of body to handle (blank
// lines are heartbeats) until the body ends (nil), handle fails (its
// error) or the body is cut or unreadable (a transport error, retryable
// while ctx lives).
func (c *Client) readLines(ctx context.Context, body io.Reader, handle func(line []byte) error) error {
	lr := newLineReader(body)
	for {
		line, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.transportErr(ctx, err, false)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // heartbeat
		}
		if err := handle(line); err != nil {
			return err
		}
	}
}

// lineReader reads NDJSON lines and tells a complete body from a cut one.
type lineReader struct {
	br   *bufio.Reader
	line []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its line ending (valid until the next
// call). It returns io.EOF at the end of the body and io.ErrUnexpectedEOF
// when the body ends inside a line: every line the server writes ends
// with a newline, so a partial one means the response was cut.
func (l *lineReader) next() ([]byte, error) {
	l.line = l.line[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		l.line = append(l.line, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(l.line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		return bytes.TrimRight(l.line, "\r\n"), nil
	}
}
