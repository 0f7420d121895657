package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/eventlog/eventlog/internal/fanout"
)

// flushBytes is the batch size of streamed responses: output is flushed to
// the client whenever this much is buffered, and at the end. Writes of
// 256 KiB rather than 32 cost a replay ~20 % less server CPU and a feed
// read ~15 % (fewer, larger writes to the socket; the reader wakes less
// often too).
const flushBytes = 256 << 10

// keepBytes is the most buffer a stream keeps across an explicit flush: a
// subscriber that caught up on a backlog in full batches and now gets an
// event at a time does not hold a full batch's buffer for its lifetime.
const keepBytes = 16 << 10

// streamWriter writes a response whose size is not known in advance
// (replay, pages, state, bulk results) in small batches, never holding the
// whole body. Nothing is sent before the first flush, so an error found
// early still becomes a normal problem response; after that the status is
// fixed and a failure can only cut the stream (abort).
//
// Each flush first extends the connection's write deadline by
// writeTimeout: a stream lives as long as the client keeps reading, while
// a client that stops reading is dropped after writeTimeout.
type streamWriter struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	contentType  string
	status       int
	writeTimeout time.Duration
	buf          []byte
	started      bool
	compressing  bool // the answer passes through the compressor

	// pipelined: a full batch is written by a goroutine of its own while
	// the next is encoded (pipeline). written delivers its outcome and
	// its buffer back, or raises its panic on the handler's goroutine
	// (the HTTP layer's recover is there only); nil when no write is in
	// flight.
	pipelined bool
	written   *fanout.Future[batchWritten]
	spare     []byte
}

// batchWritten is what a batch written in the background hands back: the
// write's error, and the buffer for the next batch.
type batchWritten struct {
	buf []byte
	err error
}

func newStreamWriter(w http.ResponseWriter, r *http.Request, status int, contentType string, writeTimeout time.Duration) *streamWriter {
	return &streamWriter{
		w:            w,
		compressing:  compressing(r),
		rc:           http.NewResponseController(w),
		contentType:  contentType,
		status:       status,
		writeTimeout: writeTimeout,
		buf:          make([]byte, 0, keepBytes),
	}
}

// noReadDeadline lifts the connection's read deadline for a response that
// may outlive the server's ReadTimeout. The request (a GET) has been read
// in full; net/http keeps reading the connection only to notice a client
// hang-up, and a read deadline expiring there would cut a healthy stream.
// A request that declares a body keeps its deadline: net/http reads the
// rest of an unread body before it answers, and without a deadline a body
// that never comes would hold the connection for ever.
func (s *streamWriter) noReadDeadline(r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		return
	}
	_ = s.rc.SetReadDeadline(time.Time{}) // best effort: unsupported on some writers
}

// pipeline has full batches written in the background, each while the
// next is encoded, for responses that go on for many batches (a replay, a
// catch-up read). A long stream's server time was half encoding, half the
// socket's write system calls, one after the other on one goroutine
// (docs/benchmarks.md, Session 26): overlapped, a replay uses the core the
// other goroutines leave idle. At most one batch is in flight, so the
// writer holds two batches' buffers; an explicit flush, end and fail wait
// for it, and nothing else touches the response meanwhile.
func (s *streamWriter) pipeline() { s.pipelined = true }

// append adds b to the buffer and sends it when the batch is full.
func (s *streamWriter) append(b []byte) error {
	s.buf = append(s.buf, b...)
	if len(s.buf) >= flushBytes {
		return s.full()
	}
	return nil
}

// appendLine has add append one NDJSON line to the buffer in place (no
// copy of it, unlike append: 3 % of a replay's CPU) and sends the batch
// when it is full.
func (s *streamWriter) appendLine(add func([]byte) []byte) error {
	s.buf = append(add(s.buf), '\n')
	if len(s.buf) >= flushBytes {
		return s.full()
	}
	return nil
}

// full sends a full batch: at once, or, pipelined and once the headers
// are out, in the background after the batch before it has been written.
// A background write's error is returned by the next call that waits.
func (s *streamWriter) full() error {
	if !s.pipelined || !s.started {
		return s.send()
	}
	if err := s.wait(); err != nil {
		return err
	}
	b := s.buf
	s.buf, s.spare = s.spare, nil
	if s.buf == nil {
		s.buf = make([]byte, 0, cap(b))
	}
	s.written = fanout.Start(func() batchWritten { return batchWritten{b[:0], s.write(b)} })
	return nil
}

// wait waits for the batch written in the background, if any, and
// returns its error.
func (s *streamWriter) wait() error {
	if s.written == nil {
		return nil
	}
	f := s.written
	s.written = nil // collected (a panic is raised once)
	w := f.Get()
	s.spare = w.buf
	return w.err
}

// flush sends the buffer now, letting a buffer grown past keepBytes go.
func (s *streamWriter) flush() error {
	err := s.send()
	if cap(s.buf) > keepBytes {
		s.buf = make([]byte, 0, keepBytes)
	}
	return err
}

// end sends what is left of a response that is complete (no flush comes
// after it). A response that ends before its first flush, and under
// compressMinSize, asks the compressor for none: a flush makes it decide
// at once and it would assume a body of its minimum size, so a 200-byte
// page went gzip-encoded, larger than plain.
func (s *streamWriter) end() error {
	if s.compressing && !s.started && len(s.buf) < compressMinSize {
		s.w.Header().Set(gzhttp.HeaderNoCompression, "1") // removed by the compressor
	}
	return s.flush()
}

// send writes the buffer (and, the first time, the headers), after the
// batch in flight, if any.
func (s *streamWriter) send() error {
	if err := s.wait(); err != nil {
		return err
	}
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", s.contentType)
		s.w.Header().Set("X-Content-Type-Options", "nosniff")
		s.w.WriteHeader(s.status)
	}
	if err := s.write(s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	return nil
}

// write extends the write deadline, writes b and flushes it to the
// client. Headers are out already (send), so it touches nothing of s but
// the response: a background batch's goroutine calls it.
func (s *streamWriter) write(b []byte) error {
	if s.writeTimeout > 0 {
		if err := s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if len(b) > 0 {
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// fail ends the response after err: before anything was sent, err is
// returned for the error handler to answer with a problem; afterwards the
// connection is cut (panic(http.ErrAbortHandler), re-raised by observe), so
// the client sees a truncated chunked body, never a short stream that looks
// complete.
func (s *streamWriter) fail(err error) error {
	_ = s.wait() // the response is no one else's once the handler ends
	if !s.started {
		s.buf = s.buf[:0]
		return err
	}
	panic(http.ErrAbortHandler)
}
