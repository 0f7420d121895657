package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// testServer is the HTTP API over a real Cassandra store in a keyspace of
// its own (dropped when the test ends).
type testServer struct {
	*httptest.Server
	Store *shardstore.Store
	Opts  shardstore.Options
	API   *httpapi.Server
	// secrets are the member secrets joins answered, by group/member
	// (groups_api_test.go); not safe for concurrent joins.
	secrets map[string]string
}

// testLimits are small, so limit tests need small bodies.
var testLimits = log.Limits{MaxEventsPerAppend: 50, MaxEventBytes: 16 << 10, MaxSnapshotBytes: 64 << 10}

// MustServer starts the API over a fresh store; mod adjusts the HTTP config.
// Store and API share one Limits and one Prometheus registry, as in
// cmd/server.
func MustServer(tb testing.TB, mod func(*httpapi.Config)) *testServer {
	tb.Helper()
	return MustServerWrapped(tb, nil, mod)
}

// MustServerWrapped is MustServer with the real store seen through wrap, a
// decorator that observes calls (never a replacement for the store).
func MustServerWrapped(tb testing.TB, wrap func(log.Store) log.Store, mod func(*httpapi.Config)) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Registerer = reg
	})
	return startServer(tb, store, opts, reg, wrap, mod)
}

// MustFeedServer is MustServer (feeds are the shard logs: an event is in
// them once committed).
func MustFeedServer(tb testing.TB, mod func(*httpapi.Config)) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Registerer = reg
	})
	return startServer(tb, store, opts, reg, nil, mod)
}

// Instance starts another server instance on ts's keyspace: its own store
// (session, heads, shard ownership; the instances forward to each other), registry and API.
func (ts *testServer) Instance(tb testing.TB, mod func(*httpapi.Config)) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := ts.Opts
	o.Cassandra.Registerer = reg
	return startServer(tb, shardstoretest.Reopen(tb, o), o, reg, nil, mod)
}

// startServer serves store (opened with opts) over HTTP.
func startServer(tb testing.TB, store *shardstore.Store, opts shardstore.Options, reg *prometheus.Registry, wrap func(log.Store) log.Store, mod func(*httpapi.Config)) *testServer {
	tb.Helper()
	cfg := httpapi.Config{
		Limits:           testLimits,
		MaxBodyBytes:     256 << 10,
		MaxPageSize:      1000,
		MaxBulkLineBytes: 32 << 10,
		MaxBulkLines:     20,
		Registry:         reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	var served log.Store = store
	if wrap != nil {
		served = wrap(store)
	}
	api, err := httpapi.New(served, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Store: store, Opts: opts, API: api}
	ts.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return ts
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// JSON decodes the body into a map.
func (r response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Do sends a request with body (nil: none) and the given header pairs.
func (ts *testServer) Do(tb testing.TB, method, path string, body []byte, header ...string) response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Append posts a JSON append body to stream.
func (ts *testServer) Append(tb testing.TB, stream, body string) response {
	tb.Helper()
	return ts.Do(tb, "POST", "/v1/streams/"+stream+"/events", []byte(body), "Content-Type", "application/json")
}

// MustAppend appends n events of type t to stream (expected "any") and
// fails unless they are created.
func (ts *testServer) MustAppend(tb testing.TB, stream string, n int) {
	tb.Helper()
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"type":"t","data":{"i":%d}}`, i))
	}
	r := ts.Append(tb, stream, `{"events":[`+strings.Join(evs, ",")+`]}`)
	if r.Status != http.StatusCreated {
		tb.Fatalf("append to %s: %s", stream, r)
	}
}

// MustProblem checks r is a problem+json with status and code.
func MustProblem(tb testing.TB, r response, status int, code string) map[string]any {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	p := r.JSON(tb)
	if p["code"] != code {
		tb.Fatalf("code %v, want %s: %s", p["code"], code, r.Body)
	}
	if p["status"] != float64(status) || p["type"] != "urn:eventlog:problem:"+code || p["title"] != http.StatusText(status) {
		tb.Fatalf("malformed problem: %s", r.Body)
	}
	return p
}

// MustNotExist checks stream has no events (a rejected request wrote nothing).
func (ts *testServer) MustNotExist(tb testing.TB, stream string) {
	tb.Helper()
	MustProblem(tb, ts.Do(tb, "GET", "/v1/streams/"+stream, nil), http.StatusNotFound, "stream_not_found")
}

// MustVersion checks stream's version.
func (ts *testServer) MustVersion(tb testing.TB, stream string, want int64) {
	tb.Helper()
	r := ts.Do(tb, "GET", "/v1/streams/"+stream, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("info %s: %s", stream, r)
	}
	if got := r.JSON(tb)["version"]; got != float64(want) {
		tb.Fatalf("%s version = %v, want %d", stream, got, want)
	}
}

// page is a decoded paged read.
type page struct {
	Stream string         `json:"stream"`
	Events []eventJSON    `json:"events"`
	Next   *int64         `json:"next"`
	Extra  map[string]any `json:"-"`
}

type eventJSON struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Version  int64           `json:"version"`
	Time     string          `json:"time"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
}

func mustPage(tb testing.TB, r response) page {
	tb.Helper()
	return mustStrictJSON[page](tb, "read", r)
}

// mustStrictJSON decodes a 200 answer into T, refusing unknown fields, so
// a field the API adds or renames fails the tests that pin its shape.
func mustStrictJSON[T any](tb testing.TB, what string, r response) T {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("%s: %s", what, r)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("%s: %v: %s", what, err, r.Body)
	}
	return v
}

func versions(evs []eventJSON) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

// countingStore passes every call to the real store and counts the events
// ReadStream has handed to the HTTP layer.
type countingStore struct {
	log.Store
	delivered atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	return c.Store.ReadStream(ctx, r, func(e *log.RecordedEvent) error {
		c.delivered.Add(1)
		return fn(e)
	})
}
