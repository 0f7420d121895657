package httpapi

import (
	"bytes"
	"net/http/httptest"
	"testing"
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
