package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// compressMinSize is the smallest response body compressed: below it the
// frame and the CPU cost more than the bytes saved, so a stream's info, an
// append's answer or a short problem go as they are.
const compressMinSize = 1024

// compressingKey marks, in a request's context, a request whose answer
// passes through the compressor.
type compressingKey struct{}

// compressing reports whether r's answer passes through the compressor.
func compressing(r *http.Request) bool {
	on, _ := r.Context().Value(compressingKey{}).(bool)
	return on
}

// compressedTypes are the media types compressed when the client accepts
// it: JSON answers, problems, and NDJSON (replays, feed reads, bulk
// results). Each flush of a streamed response passes through the
// compressor (a sync flush), so bulk results still come line by line.
// Console files and /metrics (which compresses itself) are left out.
var compressedTypes = []string{"application/json", MediaTypeProblem, MediaTypeNDJSON}

// compressor wraps h so that responses of compressedTypes of at least
// compressMinSize bytes are gzip- or zstd-encoded as the request's
// Accept-Encoding asks (zstd when both are accepted with the same weight),
// with Vary: Accept-Encoding. What the handlers do through
// http.ResponseController (flushes, deadlines, full duplex) reaches the
// connection through the wrapper's Unwrap.
//
// A streamed answer (a page, a replay, a state, a feed read) ends with a
// flush, and a flush makes the compressor decide before it knows the
// size: one that ends under compressMinSize asks for none at that flush
// (streamWriter.end), so it stays plain like a small JSON answer. A bulk
// response flushes each result line as it is decided, before the rest is
// known: it is compressed from its first line when the client accepts it.
//
// Live subscriptions (SSE and NDJSON, the routes ending in /subscribe) are
// never compressed: the compressor holds the headers back until it has
// body bytes to decide on, so a subscription's first flush, which tells
// the client it is connected before any event exists, would not reach it;
// and one event per flush compresses little. A stream named "subscribe"
// is then sent plain too, which costs nothing but bytes.
func compressor(h http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.ContentTypes(compressedTypes),
		gzhttp.MinSize(compressMinSize),
		gzhttp.CompressionLevel(gzip.BestSpeed),
	)
	if err != nil {
		return nil, err
	}
	// Inside the wrapper a GET carries compressingKey, so a streamed answer
	// knows the compressor may see its end (streamWriter.end). Streamed
	// answers with an end are GETs; other requests (every append) skip the
	// context's two allocations.
	compressed := wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			r = r.WithContext(context.WithValue(r.Context(), compressingKey{}, true))
		}
		h.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/subscribe") {
			h.ServeHTTP(w, r)
			return
		}
		compressed.ServeHTTP(w, r)
	}), nil
}
