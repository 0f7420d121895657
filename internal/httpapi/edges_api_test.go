package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// firstResponse sends a GET of path with header and returns its status,
// headers and, unless it is a 200 (a subscription that would not end),
// its body.
func firstResponse(tb testing.TB, ts *testServer, path string, header http.Header) response {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = header
	res, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	r := response{Status: res.StatusCode, Header: res.Header}
	if res.StatusCode != http.StatusOK {
		r.Body, _ = io.ReadAll(res.Body)
	}
	return r
}

// TestLastEventIDGivenTwice: a subscription with two Last-Event-ID
// headers is 400 invalid_request, as a repeated query parameter is; the
// first one was taken without a word.
func TestLastEventIDGivenTwice(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "twice-1", 3)
	var page struct {
		Next string `json:"next"`
	}
	if r := ts.Do(t, "GET", "/v1/feeds/all?limit=1", nil); r.Status != http.StatusOK || json.Unmarshal(r.Body, &page) != nil || page.Next == "" {
		t.Fatalf("feed page: %s", r)
	}
	for _, tc := range []struct{ name, path, a, b string }{
		{"Stream", "/v1/streams/twice-1/subscribe", "1", "2"},
		{"StreamSame", "/v1/streams/twice-1/subscribe", "1", "1"},
		{"Feed", "/v1/feeds/all/subscribe", page.Next, page.Next},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			h.Add("Last-Event-ID", tc.a)
			h.Add("Last-Event-ID", tc.b)
			MustProblem(t, firstResponse(t, ts, tc.path, h), http.StatusBadRequest, "invalid_request")
			// One of them is a subscription.
			one := http.Header{}
			one.Set("Last-Event-ID", tc.a)
			if r := firstResponse(t, ts, tc.path, one); r.Status != http.StatusOK {
				t.Fatalf("one Last-Event-ID: %s", r)
			}
		})
	}
}

// TestNonCanonicalVersions: "+1", "01" and the like are not 1 in a
// version (or any integer) of a path or query, nor in Last-Event-ID:
// every route that parses one answers 400 invalid_request and changes
// nothing. They were taken for 1.
func TestNonCanonicalVersions(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "canon-1", 3)
	for _, spelling := range []string{"+1", "01", "%2B1", "-0", "00"} {
		t.Run(spelling, func(t *testing.T) {
			r := ts.Do(t, "PUT", "/v1/streams/canon-1/snapshots/"+spelling, []byte(`{"n":1}`), "Content-Type", "application/json")
			MustProblem(t, r, http.StatusBadRequest, "invalid_request")
			for _, path := range []string{
				"/v1/streams/canon-1/events?from=" + spelling,
				"/v1/streams/canon-1/events?to=" + spelling,
				"/v1/streams/canon-1/events?limit=" + spelling,
				"/v1/streams/canon-1/snapshots/latest?max_version=" + spelling,
				"/v1/streams/canon-1/state?at=" + spelling,
				"/v1/streams/canon-1/subscribe?from=" + spelling,
				"/v1/streams?limit=" + spelling,
			} {
				if r := firstResponse(t, ts, path, http.Header{}); r.Status != http.StatusBadRequest {
					t.Fatalf("GET %s: %d, want 400", path, r.Status)
				} else {
					MustProblem(t, r, http.StatusBadRequest, "invalid_request")
				}
			}
			h := http.Header{}
			h.Set("Last-Event-ID", spelling)
			MustProblem(t, firstResponse(t, ts, "/v1/streams/canon-1/subscribe", h), http.StatusBadRequest, "invalid_request")
		})
	}
	// Nothing was stored by the refused snapshot writes.
	MustProblem(t, ts.Do(t, "GET", "/v1/streams/canon-1/snapshots/latest", nil), http.StatusNotFound, "snapshot_not_found")
	// The canonical spellings work.
	if r := ts.Do(t, "PUT", "/v1/streams/canon-1/snapshots/1", []byte(`{"n":1}`), "Content-Type", "application/json"); r.Status/100 != 2 {
		t.Fatalf("PUT snapshot 1: %s", r)
	}
	if r := ts.Do(t, "GET", "/v1/streams/canon-1/events?from=1&to=2&limit=2", nil); r.Status != http.StatusOK {
		t.Fatalf("read: %s", r)
	}
}
