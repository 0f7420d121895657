package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// mustUncompress undoes a response's Content-Encoding.
func mustUncompress(tb testing.TB, encoding string, b []byte) []byte {
	tb.Helper()
	var r io.Reader
	switch encoding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			tb.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			tb.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		tb.Fatalf("unknown encoding %q", encoding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("decode %s: %v", encoding, err)
	}
	return out
}

// mustVaryAcceptEncoding checks a response tells caches it depends on
// Accept-Encoding.
func mustVaryAcceptEncoding(tb testing.TB, h http.Header) {
	tb.Helper()
	if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(v, "Accept-Encoding") }) {
		tb.Fatalf("Vary %q lacks Accept-Encoding", h.Values("Vary"))
	}
}

// TestCompression: JSON and NDJSON answers come gzip- or zstd-encoded as
// Accept-Encoding asks and decode to the plain answer's bytes; small ones
// stay plain (below 1 KiB); DisableCompression turns it off.
func TestCompression(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "comp-1", 40) // about 4 KiB of page
	reads := []struct {
		name   string
		path   string
		header []string
	}{
		{"Page", "/v1/streams/comp-1/events?limit=1000", nil},
		{"Replay", "/v1/streams/comp-1/events", []string{"Accept", httpapi.MediaTypeNDJSON}},
		{"Feed", "/v1/feeds/all", []string{"Accept", httpapi.MediaTypeNDJSON}},
	}
	for _, rd := range reads {
		plain := ts.Do(t, "GET", rd.path, nil, append(slices.Clone(rd.header), "Accept-Encoding", "identity")...)
		if plain.Status != http.StatusOK || plain.Header.Get("Content-Encoding") != "" || len(plain.Body) < 2048 {
			t.Fatalf("%s plain: Content-Encoding %q, %d bytes: %s", rd.name, plain.Header.Get("Content-Encoding"), len(plain.Body), plain)
		}
		for _, enc := range []string{"gzip", "zstd"} {
			t.Run(rd.name+"/"+enc, func(t *testing.T) {
				r := ts.Do(t, "GET", rd.path, nil, append(slices.Clone(rd.header), "Accept-Encoding", enc)...)
				if r.Status != http.StatusOK {
					t.Fatal(r)
				}
				if got := r.Header.Get("Content-Encoding"); got != enc {
					t.Fatalf("Content-Encoding %q, want %s", got, enc)
				}
				mustVaryAcceptEncoding(t, r.Header)
				if got, want := r.Header.Get("Content-Type"), plain.Header.Get("Content-Type"); got != want {
					t.Fatalf("Content-Type %q, want %q", got, want)
				}
				if len(r.Body) >= len(plain.Body) {
					t.Fatalf("%d bytes encoded, %d plain", len(r.Body), len(plain.Body))
				}
				got := mustUncompress(t, enc, r.Body)
				if rd.name == "Feed" {
					// The feed's trailers (where to read on) are not in the body; the lines are.
					got, plain.Body = bytes.TrimSpace(got), bytes.TrimSpace(plain.Body)
				}
				if !bytes.Equal(got, plain.Body) {
					t.Fatalf("decoded body differs from the plain one\ngot:  %.300s\nwant: %.300s", got, plain.Body)
				}
			})
		}
	}
	t.Run("PreferZstd", func(t *testing.T) {
		r := ts.Do(t, "GET", reads[0].path, nil, "Accept-Encoding", "gzip, zstd")
		if got := r.Header.Get("Content-Encoding"); got != "zstd" {
			t.Fatalf("Content-Encoding %q, want zstd", got)
		}
	})
	t.Run("SmallStaysPlain", func(t *testing.T) {
		r := ts.Do(t, "GET", "/v1/streams/comp-1", nil, "Accept-Encoding", "gzip")
		if r.Status != http.StatusOK || r.Header.Get("Content-Encoding") != "" {
			t.Fatalf("stream info: Content-Encoding %q: %s", r.Header.Get("Content-Encoding"), r)
		}
		mustVaryAcceptEncoding(t, r.Header)
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/comp-1/events?limit=x", nil, "Accept-Encoding", "gzip"), http.StatusBadRequest, "invalid_request")
	})
	t.Run("Disabled", func(t *testing.T) {
		off := MustServer(t, func(c *httpapi.Config) { c.DisableCompression = true })
		off.MustAppend(t, "comp-2", 40)
		r := off.Do(t, "GET", "/v1/streams/comp-2/events?limit=1000", nil, "Accept-Encoding", "gzip, zstd")
		if r.Status != http.StatusOK || r.Header.Get("Content-Encoding") != "" || !bytes.HasPrefix(r.Body, []byte(`{"stream":"comp-2"`)) {
			t.Fatalf("Content-Encoding %q: %.200s", r.Header.Get("Content-Encoding"), r.Body)
		}
	})
}

// TestCompressionLiveSubscriptions: a client that accepts gzip and zstd
// still gets a live subscription's headers at once and each event as it
// is appended (subscriptions are sent plain: the compressor would hold the
// headers until the first event).
func TestCompressionLiveSubscriptions(t *testing.T) {
	ts := MustServer(t, nil) // default heartbeat (15 s): nothing else flushes
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"SSE", nil},
		{"NDJSON", []string{"Accept", httpapi.MediaTypeNDJSON}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "live-" + strings.ToLower(tc.name)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/streams/"+stream+"/subscribe", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			req.Header.Set("Accept-Encoding", "gzip, zstd")
			type answer struct {
				res *http.Response
				err error
			}
			answered := make(chan answer, 1)
			go func() {
				res, err := ts.Client().Do(req)
				answered <- answer{res, err}
			}()
			var res *http.Response
			select {
			case a := <-answered:
				if a.err != nil {
					t.Fatal(a.err)
				}
				res = a.res
			case <-time.After(5 * time.Second):
				t.Fatal("no response headers within 5 s of subscribing to a stream without events")
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" {
				t.Fatalf("status %d, Content-Encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
			}
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			ts.MustAppend(t, stream, 1)
			appended := time.Now()
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatal("subscription ended")
					}
					if strings.Contains(line, `"version":1`) {
						if d := time.Since(appended); d > 2*time.Second {
							t.Fatalf("event delivered %v after its append", d)
						}
						return
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the appended event did not arrive within 5 s")
				}
			}
		})
	}
}

// failingStore fails ReadStream after after events have been handed on.
type failingStore struct {
	log.Store
	after int
}

func (f *failingStore) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	n := 0
	return f.Store.ReadStream(ctx, r, func(e *log.RecordedEvent) error {
		if n++; n > f.after {
			return log.ErrUnavailable
		}
		return fn(e)
	})
}

// TestCompressionCutReplay: a compressed replay that fails after its first
// flush is still cut, so the client gets an error, never a body that
// decodes as complete.
func TestCompressionCutReplay(t *testing.T) {
	ts := MustServerWrapped(t, func(s log.Store) log.Store { return &failingStore{Store: s, after: 45} }, nil)
	// 45 events of 8 KB pass the first batch of 256 KiB (flushBytes).
	data := strings.Repeat("x", 8000)
	var evs []string
	for range 10 {
		evs = append(evs, `{"type":"t","data":{"s":"`+data+`"}}`)
	}
	for range 5 {
		if r := ts.Append(t, "cut-1", `{"events":[`+strings.Join(evs, ",")+`]}`); r.Status != http.StatusCreated {
			t.Fatal(r)
		}
	}
	for _, enc := range []string{"", "gzip", "zstd"} { // "": the transport's own gzip
		t.Run("Encoding="+enc, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/streams/cut-1/events", nil)
			req.Header.Set("Accept", httpapi.MediaTypeNDJSON)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			var body io.Reader = res.Body
			switch enc {
			case "gzip":
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			case "zstd":
				zr, err := zstd.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				body = zr
			}
			b, err := io.ReadAll(body)
			if err == nil {
				t.Fatalf("a cut replay read as complete: %d lines", bytes.Count(b, []byte("\n")))
			}
			if n := bytes.Count(b, []byte("\n")); n == 0 || n > 45 {
				t.Fatalf("%d lines before the cut, want 1..45 (%v)", n, err)
			}
		})
	}
}

// TestCompressionSmallStreamedStaysPlain: a streamed answer (a page, a
// replay, a state, a feed page or NDJSON read) that ends under 1 KiB
// stays plain, as a small JSON answer does: each ended with a flush,
// which started compression whatever the size. A feed read's trailers
// stay trailers. A bulk response is compressed from its first result
// line, which goes out before the rest is known.
func TestCompressionSmallStreamedStaysPlain(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "small-1", 1)
	ndjson := []string{"Accept", httpapi.MediaTypeNDJSON}
	for _, rd := range []struct {
		name   string
		path   string
		header []string
	}{
		{"Page", "/v1/streams/small-1/events", nil},
		{"Replay", "/v1/streams/small-1/events", ndjson},
		{"State", "/v1/streams/small-1/state", nil},
		{"FeedPage", "/v1/feeds/category/small", nil},
		{"FeedRead", "/v1/feeds/category/small", ndjson},
	} {
		for _, enc := range []string{"gzip", "zstd", "identity"} {
			t.Run(rd.name+"/"+enc, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, ts.URL+rd.path, nil)
				for i := 0; i+1 < len(rd.header); i += 2 {
					req.Header.Set(rd.header[i], rd.header[i+1])
				}
				req.Header.Set("Accept-Encoding", enc)
				res, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != http.StatusOK || len(b) == 0 || len(b) >= 1024 {
					t.Fatalf("status %d, %d bytes: %s", res.StatusCode, len(b), b)
				}
				if got := res.Header.Get("Content-Encoding"); got != "" || !bytes.HasPrefix(b, []byte(`{"`)) {
					t.Fatalf("%d bytes sent with Content-Encoding %q, want plain: %q", len(b), got, b)
				}
				mustVaryAcceptEncoding(t, res.Header)
				for k := range res.Header {
					if strings.HasPrefix(strings.ToLower(k), "no-gzip") {
						t.Fatalf("header %s leaked", k)
					}
				}
				if rd.name == "FeedRead" {
					if res.Header.Get(httpapi.HeaderFeedNext) != "" || res.Trailer.Get(httpapi.HeaderFeedNext) == "" {
						t.Fatalf("%s: header %q, trailer %q; want a trailer only", httpapi.HeaderFeedNext, res.Header.Get(httpapi.HeaderFeedNext), res.Trailer.Get(httpapi.HeaderFeedNext))
					}
				}
			})
		}
	}
	t.Run("Bulk", func(t *testing.T) {
		r := ts.Do(t, "POST", "/v1/events", []byte(`{"stream":"small-2","events":[{"type":"t","data":{}}]}`+"\n"),
			"Content-Type", httpapi.MediaTypeNDJSON, "Accept-Encoding", "gzip")
		if r.Status != http.StatusOK || r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q: %s", r.Header.Get("Content-Encoding"), r)
		}
		if got := mustUncompress(t, "gzip", r.Body); !bytes.Contains(got, []byte(`"status":201`)) {
			t.Fatalf("bulk result %s", got)
		}
	})
}
