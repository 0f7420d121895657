package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCompressorMarksGETsOnly: the compressor marks (compressingKey) the
// requests whose answers pass through it, so that a streamed answer that
// ends small asks it for none (streamWriter.end), on GETs only: the
// streamed answers with an end are GETs (pages, replays, states, feed
// reads), and the others (every append) skip the context's allocations.
// A live subscription, which never passes through it, is not marked
// either. The mark does not decide compression: a POST's answer is
// compressed like a GET's (a bulk response from its first line).
func TestCompressorMarksGETsOnly(t *testing.T) {
	var marked bool
	h, err := compressor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		marked = compressing(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":"` + strings.Repeat("x", 2*compressMinSize) + `"}`))
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		marked       bool
		compressed   bool
	}{
		{http.MethodGet, "/v1/streams/s-1/events", true, true},
		{http.MethodGet, "/v1/feeds/all", true, true},
		{http.MethodPost, "/v1/streams/s-1/events", false, true},
		{http.MethodPost, "/v1/events", false, true},
		{http.MethodPut, "/v1/streams/s-1/snapshot", false, true},
		{http.MethodDelete, "/v1/admin/keys/k", false, true},
		{http.MethodGet, "/v1/streams/s-1/subscribe", false, false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			marked = !tc.marked
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if marked != tc.marked {
				t.Errorf("marked %v, want %v", marked, tc.marked)
			}
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.compressed {
				t.Errorf("Content-Encoding %q, want compressed %v", rec.Header().Get("Content-Encoding"), tc.compressed)
			}
			if got := strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding"); got != tc.compressed {
				t.Errorf("Vary %q, want Accept-Encoding in it %v", rec.Header().Get("Vary"), tc.compressed)
			}
		})
	}
}
