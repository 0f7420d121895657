package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
)

// TestStreamWriterBatches: output goes out in batches of flushBytes while
// it is appended, whole and in order, and an explicit flush lets a buffer
// grown for such batches go.
func TestStreamWriterBatches(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := newStreamWriter(rec, httptest.NewRequest("GET", "/", nil), 200, MediaTypeNDJSON, 0)
	line := bytes.Repeat([]byte("x"), 999)
	line = append(line, '\n')
	var want []byte
	for i := 0; i < 3*flushBytes/len(line); i++ {
		if err := sw.append(line); err != nil {
			t.Fatal(err)
		}
		want = append(want, line...)
		if sent := rec.Body.Len(); sent%len(line) != 0 || len(want)-sent >= flushBytes+len(line) {
			t.Fatalf("after %d bytes appended, %d sent", len(want), sent)
		}
	}
	if rec.Body.Len() < 2*flushBytes {
		t.Fatalf("%d bytes sent of %d: no batches went out", rec.Body.Len(), len(want))
	}
	if cap(sw.buf) <= keepBytes {
		t.Fatalf("buffer of %d bytes while batching, want more than %d", cap(sw.buf), keepBytes)
	}
	if err := sw.flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("sent %d bytes, not the %d appended", rec.Body.Len(), len(want))
	}
	if cap(sw.buf) > keepBytes {
		t.Fatalf("buffer of %d bytes kept after a flush, want at most %d", cap(sw.buf), keepBytes)
	}
	if ct := rec.Header().Get("Content-Type"); ct != MediaTypeNDJSON {
		t.Fatalf("content type %q", ct)
	}
}

// gatedWriter is a ResponseWriter whose writes each wait for a token on
// gate, announcing themselves on started first; fail makes the writes
// after it fail.
type gatedWriter struct {
	hdr     http.Header
	gate    chan struct{}
	started chan int // the size of each write, as it begins
	mu      sync.Mutex
	body    bytes.Buffer
	fail    error
}

func (g *gatedWriter) Header() http.Header { return g.hdr }
func (g *gatedWriter) WriteHeader(int)     {}
func (g *gatedWriter) Write(b []byte) (int, error) {
	g.started <- len(b)
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return 0, g.fail
	}
	return g.body.Write(b)
}

// TestStreamWriterPipelined: a pipelined writer goes on taking lines
// while a full batch is written, sends everything in order, has at most
// one batch in flight, and returns a background write's error from the
// next call that waits for it.
func TestStreamWriterPipelined(t *testing.T) {
	g := &gatedWriter{hdr: http.Header{}, gate: make(chan struct{}), started: make(chan int, 8)}
	sw := newStreamWriter(g, httptest.NewRequest("GET", "/", nil), 200, MediaTypeNDJSON, 0)
	sw.pipeline()
	line := append(bytes.Repeat([]byte("y"), 1023), '\n')
	perBatch := (flushBytes + len(line) - 1) / len(line) // lines that fill a batch
	var want []byte
	appendBatch := func() error {
		for range perBatch {
			if err := sw.append(line); err != nil {
				return err
			}
			want = append(want, line...)
		}
		return nil
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-g.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no write began", what)
		}
	}

	// The first batch goes out at once (with the headers).
	done := make(chan error, 1)
	go func() { done <- appendBatch() }()
	wait("first batch")
	g.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The second is written in the background: its write is held, and
	// the third batch's lines are still taken meanwhile.
	go func() { done <- appendBatch() }()
	wait("second batch")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("appends waited for the batch being written")
	}
	// The third batch is full: it waits for the second (one in flight).
	go func() { done <- appendBatch() }()
	select {
	case n := <-g.started:
		t.Fatalf("a write of %d bytes began while another was in flight", n)
	case err := <-done:
		t.Fatalf("a full batch was taken while another was in flight (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.gate <- struct{}{} // the second batch written: the third goes
	wait("third batch")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The third batch's write fails: the next call that waits says so.
	g.mu.Lock()
	g.fail = errors.New("connection reset")
	g.mu.Unlock()
	g.gate <- struct{}{}
	if err := sw.end(); err == nil || err.Error() != "connection reset" {
		t.Fatalf("end after a failed background write: %v", err)
	}
	if sent := g.body.Bytes(); !bytes.Equal(sent, want[:len(sent)]) || len(sent) != 2*perBatch*len(line) {
		t.Fatalf("sent %d bytes, want the first two batches (%d bytes) in order", len(sent), 2*perBatch*len(line))
	}
}

// panicWriter is a ResponseWriter whose writes after the first panic.
type panicWriter struct {
	hdr    http.Header
	writes int
}

func (p *panicWriter) Header() http.Header { return p.hdr }
func (p *panicWriter) WriteHeader(int)     {}
func (p *panicWriter) Write(b []byte) (int, error) {
	if p.writes++; p.writes > 1 {
		panic("write bug")
	}
	return len(b), nil
}

// TestStreamWriterBackgroundPanic: a panic of a batch written in the
// background is raised on the handler's goroutine by the next call that
// waits for it, with the writing goroutine's stack, where observe answers
// or cuts the stream. It ended the process (the test binary crashed).
func TestStreamWriterBackgroundPanic(t *testing.T) {
	w := &panicWriter{hdr: http.Header{}}
	sw := newStreamWriter(w, httptest.NewRequest("GET", "/", nil), 200, MediaTypeNDJSON, 0)
	sw.pipeline()
	batch := bytes.Repeat([]byte("x"), flushBytes)
	if err := sw.append(batch); err != nil { // sent at once: the headers go with it
		t.Fatal(err)
	}
	if err := sw.append(batch); err != nil { // written in the background, where it panics
		t.Fatal(err)
	}
	var got any
	func() {
		defer func() { got = recover() }()
		_ = sw.wait()
	}()
	p, ok := got.(*fanout.Panic)
	if !ok || p.Value != "write bug" || !strings.Contains(string(p.Stack), "(*panicWriter).Write(") {
		t.Fatalf("wait raised %v; want the background write's panic with its stack", got)
	}
	if err := sw.wait(); err != nil { // collected: nothing in flight any more
		t.Fatal(err)
	}
}
