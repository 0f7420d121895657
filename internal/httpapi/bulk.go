package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// errLineTooLong: a bulk line exceeds MaxBulkLineBytes (the line is
// skipped, later lines are still processed).
var errLineTooLong = errors.New("line too long")

// errBulkDeadline: the bulk request's deadline passed before the next line
// was read (replaced by a problem for that line).
var errBulkDeadline = errors.New("bulk deadline passed")

// lineReader reads NDJSON lines of at most max bytes, holding no more than
// one line (plus a 64 KiB read buffer) in memory.
type lineReader struct {
	br   *bufio.Reader
	max  int
	line []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its line ending. A line longer than
// max is consumed and reported as errLineTooLong. At the end of the input
// it returns io.EOF (after the last line, which may lack a newline).
func (l *lineReader) next() ([]byte, error) {
	l.line = l.line[:0]
	tooLong := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(l.line)+len(chunk) > l.max+2 { // +2: room for "\r\n"
				tooLong = true
				l.line = l.line[:0]
			} else {
				l.line = append(l.line, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(l.line) > 0 || tooLong):
			err = nil // the last line, unterminated
		case err != nil:
			return nil, err
		}
		if tooLong {
			return nil, errLineTooLong
		}
		line := bytes.TrimRight(l.line, "\r\n")
		if len(line) > l.max {
			return nil, errLineTooLong
		}
		return line, nil
	}
}

// bulkResult is one output line of a bulk append that succeeded.
type bulkResult struct {
	Line   int `json:"line"`
	Status int `json:"status"`
	appendResult
}

// bulkAppend serves POST /v1/events: an NDJSON body, one append per line,
// each {"stream", "expected_version", "events"}. The response (200,
// NDJSON) has one line per non-blank input line, in order: the append's
// result with "status" 201 or 200, or a problem object, each with the
// 1-based input "line" number. Every line is its own atomic append; a bad
// line does not stop the lines after it. Blank lines are skipped but count
// towards MaxBulkLines (so a body of newlines ends quickly). A line over
// MaxBulkLineBytes gets a payload_too_large problem; the line past
// MaxBulkLines, or past MaxBulkBytes of the decoded body, gets one and
// ends the request, as does an unreadable body.
//
// Request and response are full duplex: each result is flushed after its
// line is processed. The whole request has one deadline, BulkTimeout,
// however its lines trickle in: the first line not processed by then gets
// an unavailable problem and ends the request (it once ended as a clean
// 200, the lines left told nothing). It stops at the first line read
// after the client left.
func (s *Server) bulkAppend(c *echo.Context) error {
	if err := requireMediaType(c.Request(), MediaTypeNDJSON); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.BulkTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	rc := http.NewResponseController(c.Response())
	if err := rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	// With the read deadline set, a read past it returns at once: the
	// line the deadline cut off can still be found and answered.
	timedReads := rc.SetReadDeadline(deadline) == nil // best effort: unsupported on some writers
	sw := newStreamWriter(c.Response(), c.Request(), http.StatusOK, MediaTypeNDJSON, s.cfg.WriteTimeout)
	lr := newLineReader(c.Request().Body, s.cfg.MaxBulkLineBytes)
	var out []byte
	for lineNo := 1; ; lineNo++ {
		late := ctx.Err() != nil
		if late && c.Request().Context().Err() != nil { // the client is gone: write nothing more
			return nil
		}
		var (
			line []byte
			err  error
		)
		if late && !timedReads {
			err = errBulkDeadline
		} else {
			line, err = lr.next()
		}
		if err == io.EOF {
			break
		}
		// The deadline passed (before this line, or while it was read):
		// this line and those after it are not processed, and the
		// response says so rather than end as if complete.
		pastDeadline := late || (err != nil && !errors.Is(err, errLineTooLong) && !time.Now().Before(deadline))
		if pastDeadline && (err != nil || len(bytes.TrimSpace(line)) > 0) {
			err = newProblem(http.StatusServiceUnavailable, CodeUnavailable,
				fmt.Sprintf("the bulk request's deadline (%s) passed: this line and any after it were not processed", s.cfg.BulkTimeout))
		}
		if lineNo > s.cfg.MaxBulkLines {
			err = newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
				fmt.Sprintf("a bulk request may hold at most %d lines, blank ones included; this line and any after it were not processed", s.cfg.MaxBulkLines))
		} else if err == nil && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fatal := err != nil && !errors.Is(err, errLineTooLong)
		switch {
		case errors.Is(err, errLineTooLong):
			err = newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
				fmt.Sprintf("the line exceeds %d bytes", s.cfg.MaxBulkLineBytes))
		case err == nil && !s.keyStillAccepted(c):
			// Revoked or expired since the request began: this line and
			// any after it are not processed.
			err, fatal = auth.ErrInvalidToken, true
		case err == nil:
			out, err = s.bulkLine(ctx, c, lineNo, line, out[:0])
		}
		if err != nil {
			out = appendProblemLine(out[:0], lineNo, RequestID(ctx), err)
		}
		if err := sw.append(out); err != nil {
			return s.failStream(c, sw, err)
		}
		if err := sw.flush(); err != nil {
			return s.failStream(c, sw, err)
		}
		if fatal {
			break
		}
	}
	if err := sw.end(); err != nil {
		return s.failStream(c, sw, err)
	}
	return nil
}

// bulkLine appends one line's request and appends its result to out.
// Each line is checked against the key's append scopes on its own: a
// refused line is answered 403 in its result line, the others are written.
func (s *Server) bulkLine(ctx context.Context, c *echo.Context, lineNo int, line []byte, out []byte) ([]byte, error) {
	body, err := decodeAppend(bytes.NewReader(line), s.decodeOptions(true))
	if err != nil {
		return out, err
	}
	stream, err := log.ParseStreamID(body.Stream)
	if err != nil {
		return out, err
	}
	if !s.permits(c, auth.ActionAppend, string(stream)) {
		return out, auth.ErrForbidden
	}
	res, err := s.append(ctx, log.AppendRequest{Stream: stream, Expected: body.Expected, Events: s.withTraceparent(c.Request(), body.Events)})
	if err != nil {
		return out, err
	}
	r := bulkResult{Line: lineNo, Status: http.StatusCreated, appendResult: newAppendResult(res)}
	if res.Duplicate {
		r.Status = http.StatusOK
	}
	b, err := json.Marshal(r)
	if err != nil {
		return out, err
	}
	return append(append(out, b...), '\n'), nil
}

// appendProblemLine appends the problem for err, tagged with its line and
// the request's id.
func appendProblemLine(out []byte, lineNo int, requestID string, err error) []byte {
	p := *ProblemFor(err)
	p.Line = lineNo
	p.RequestID = requestID
	b, mErr := json.Marshal(&p)
	if mErr != nil {
		b = []byte(`{"type":"urn:eventlog:problem:internal","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	return append(append(out, b...), '\n')
}
