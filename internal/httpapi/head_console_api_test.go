package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/eventlog/eventlog/internal/console"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestHeadConsole: a HEAD of a console file has the GET's headers, its
// Content-Length the file's, not 0. The console answers HEAD itself,
// without writing the body, and the router's HEAD writer, which counts the
// bytes written, announced 0 (README: "a Content-Length, where there is
// one, is the plain body's").
func TestHeadConsole(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) { c.Console = console.NewHandler() })
	for _, path := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/style.css"} {
		get := ts.Do(t, "GET", path, nil, "Accept-Encoding", "identity")
		head := ts.Do(t, "HEAD", path, nil, "Accept-Encoding", "identity")
		if get.Status != http.StatusOK || len(get.Body) == 0 {
			t.Fatalf("GET %s: %d, %d bytes", path, get.Status, len(get.Body))
		}
		if head.Status != get.Status || len(head.Body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") ||
			head.Header.Get("ETag") != get.Header.Get("ETag") {
			t.Fatalf("HEAD %s: %d %q %q, GET: %d %q", path, head.Status, head.Header.Get("Content-Type"), head.Body, get.Status, get.Header.Get("Content-Type"))
		}
		if cl := head.Header.Get("Content-Length"); cl != strconv.Itoa(len(get.Body)) {
			t.Fatalf("HEAD %s: Content-Length %s, GET's body %d bytes", path, cl, len(get.Body))
		}
		// Asked compressed, as the README says of every HEAD: the plain
		// body's length, no Content-Encoding.
		gz := ts.Do(t, "HEAD", path, nil, "Accept-Encoding", "gzip")
		if gz.Status != http.StatusOK || gz.Header.Get("Content-Encoding") != "" ||
			gz.Header.Get("Content-Length") != "" && gz.Header.Get("Content-Length") != strconv.Itoa(len(get.Body)) {
			t.Fatalf("HEAD %s with gzip: %d, Content-Encoding %q, Content-Length %q, GET's body %d bytes",
				path, gz.Status, gz.Header.Get("Content-Encoding"), gz.Header.Get("Content-Length"), len(get.Body))
		}
		// Revalidation: 304 as the GET's, without a length.
		nm := ts.Do(t, "HEAD", path, nil, "If-None-Match", get.Header.Get("ETag"))
		if nm.Status != http.StatusNotModified {
			t.Fatalf("HEAD %s If-None-Match: %d", path, nm.Status)
		}
	}
}
