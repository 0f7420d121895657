package clienttest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// Tests in this package use the server's internal packages (they are in
// the root module); the client module itself cannot and must not
// (client's TestNoInternalImports, and TestClientDependencies here).

// bucketMaxEvents is small, so a replay of a few thousand events crosses
// buckets (partitions).
const bucketMaxEvents = 1000

// MustServer starts the real HTTP API over a real Cassandra store in a
// fresh keyspace (dropped when the test ends) and returns its URL.
func MustServer(tb testing.TB) string {
	tb.Helper()
	return MustServerConfig(tb, nil)
}

// MustServerConfig is MustServer with the HTTP config adjusted by mod.
func MustServerConfig(tb testing.TB, mod func(*httpapi.Config)) string {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, _ := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.BucketMaxEvents = bucketMaxEvents
		o.Registerer = reg
	})
	cfg := httpapi.Config{
		Registry: reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := httpapi.New(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	return ts.URL
}

// fastRetry keeps the back-off short in tests.
var fastRetry = client.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}

// MustClient returns a client of baseURL with fastRetry.
func MustClient(tb testing.TB, baseURL string) *client.Client {
	tb.Helper()
	c, err := client.New(client.Options{BaseURL: baseURL, Retry: fastRetry, UserAgent: "client-test"})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// proxy sits between a client and the real server and injects faults.
// Each request goes to fault (if set), which may answer it itself, or
// forward it (Forward, ForwardCut) and then fail; a request fault leaves
// alone is passed through.
type proxy struct {
	*httptest.Server
	target *url.URL
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	fault    func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool
	requests []*http.Request // every request seen, with its body read into bodies
	bodies   []string
}

// MustProxy starts a proxy in front of target.
func MustProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{target: u, rp: httputil.NewSingleHostReverseProxy(u)}
	p.rp.FlushInterval = -1
	p.rp.ErrorLog = stdlog.New(io.Discard, "", 0)
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(p.Close)
	return p
}

// SetFault installs fault; n counts the requests from 1.
func (p *proxy) SetFault(fault func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = fault
}

// Requests returns the requests seen so far and their bodies.
func (p *proxy) Requests() ([]*http.Request, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.requests...), append([]string(nil), p.bodies...)
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.bodies = append(p.bodies, string(body))
	n, fault := len(p.requests), p.fault
	p.mu.Unlock()
	if fault != nil && fault(p, n, w, r) {
		return
	}
	p.rp.ServeHTTP(w, r)
}

// Forward passes r to the server and returns the response, read in full.
func (p *proxy) Forward(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	p.rp.ServeHTTP(rec, r)
	return rec
}

// Drop closes the client's connection without an answer.
func Drop() { panic(http.ErrAbortHandler) }

// Problem answers with a problem+json of status and code.
func Problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"urn:eventlog:problem:%s","title":%q,"status":%d,"code":%q}`+"\n",
		code, http.StatusText(status), status, code)
}

// ForwardCut passes r to the server and streams the response back, line
// by line through edit (nil: unchanged), but cuts the connection after
// lines lines, in the middle of the next one. If the response has no more
// lines than that, it is passed on whole.
func (p *proxy) ForwardCut(w http.ResponseWriter, r *http.Request, lines int, edit func(i int, line []byte) []byte) {
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), r.Body)
	out.Header = r.Header.Clone()
	// The cut is made between lines of the body as the client reads it:
	// ask for it plain (the server compresses what a client's
	// Accept-Encoding allows, and Go's transport asks for gzip).
	out.Header.Del("Accept-Encoding")
	res, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		Drop()
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	br := bufio.NewReader(res.Body)
	for i := 1; ; i++ {
		line, err := br.ReadBytes('\n')
		if edit != nil && len(line) > 0 {
			line = edit(i, line)
		}
		if i > lines && len(line) > 0 {
			w.Write(line[:len(line)/2])
			w.(http.Flusher).Flush()
			res.Body.Close() // the server's handler ends on its next write
			Drop()
		}
		w.Write(line)
		if err != nil {
			return
		}
	}
}

// ctx is a test context with a deadline.
func ctx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return c
}
