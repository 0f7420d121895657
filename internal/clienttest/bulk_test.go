package clienttest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/google/uuid"
)

// bulkOf builds k appends, one per stream prefix-1..k, of two events with
// fixed ids.
func bulkOf(prefix string, k int) []client.BulkAppend {
	out := make([]client.BulkAppend, k)
	for i := range out {
		out[i] = client.BulkAppend{
			Stream:   fmt.Sprintf("%s-%d", prefix, i+1),
			Expected: client.NoStream,
			Events: []client.EventData{
				{ID: uuid.Must(uuid.NewV7()), Type: "A", Data: i},
				{ID: uuid.Must(uuid.NewV7()), Type: "B", Data: i},
			},
		}
	}
	return out
}

// mustBulkOK checks every result is a success at versions 1..2.
func mustBulkOK(t *testing.T, res []client.BulkResult, n int, dup func(i int) bool) {
	t.Helper()
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	for i, r := range res {
		if r.Err != nil || r.Result == nil {
			t.Fatalf("results[%d]: %v", i, r.Err)
		}
		if r.Result.FirstVersion != 1 || r.Result.LastVersion != 2 || (dup != nil && r.Result.Duplicate != dup(i)) {
			t.Fatalf("results[%d] = %+v", i, r.Result)
		}
	}
}

// mustVersions checks each stream of appends is at version 2.
func mustVersions(t *testing.T, c *client.Client, appends []client.BulkAppend) {
	t.Helper()
	for _, a := range appends {
		info, err := c.StreamInfo(ctx(t), a.Stream)
		if err != nil || info.Version != 2 {
			t.Fatalf("%s: %+v, %v; want version 2 (stored once)", a.Stream, info, err)
		}
	}
}

func TestAppendBulk(t *testing.T) {
	srv := MustServer(t)
	c := MustClient(t, srv)
	ctx := ctx(t)

	t.Run("Mixed", func(t *testing.T) {
		appends := []client.BulkAppend{
			{Stream: "bulk-1", Events: []client.EventData{{Type: "A", Data: 1}}},
			{Stream: "bad id", Events: []client.EventData{{Type: "A", Data: 1}}},
			{Stream: "bulk-1", Expected: client.Exact(1), Events: []client.EventData{{Type: "B", Data: 2}, {Type: "C", Data: 3}}},
			{Stream: "bulk-1", Expected: client.NoStream, Events: []client.EventData{{Type: "D", Data: 4}}},
		}
		res, err := c.AppendBulk(ctx, appends)
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0].Result; res[0].Err != nil || r.Stream != "bulk-1" || r.FirstVersion != 1 || r.Duplicate {
			t.Fatalf("results[0] = %+v, %v", r, res[0].Err)
		}
		var p *client.Problem
		if !errors.As(res[1].Err, &p) || p.Code != client.CodeInvalidStreamID || p.Status != http.StatusBadRequest || p.Line != 2 {
			t.Fatalf("results[1]: %v, want invalid_stream_id on line 2", res[1].Err)
		}
		if r := res[2].Result; res[2].Err != nil || r.FirstVersion != 2 || r.LastVersion != 3 || len(r.Events) != 2 {
			t.Fatalf("results[2] = %+v, %v", r, res[2].Err)
		}
		if !errors.As(res[3].Err, &p) || !errors.Is(res[3].Err, client.ErrWrongExpectedVersion) || p.CurrentVersion != 3 || p.Line != 4 {
			t.Fatalf("results[3]: %v, want wrong_expected_version at 3 on line 4", res[3].Err)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		appends := bulkOf("bulk-idem", 3)
		res, err := c.AppendBulk(ctx, appends)
		if err != nil {
			t.Fatal(err)
		}
		mustBulkOK(t, res, 3, func(int) bool { return false })
		res, err = c.AppendBulk(ctx, appends)
		if err != nil {
			t.Fatal(err)
		}
		mustBulkOK(t, res, 3, func(int) bool { return true })
		mustVersions(t, c, appends)
	})
	t.Run("ResumeAfterCut", func(t *testing.T) {
		// The first response is cut after one result: the client sends
		// the appends without a result again, and only those.
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				p.ForwardCut(w, r, 1, nil)
				return true
			}
			return false
		})
		appends := bulkOf("bulk-cut", 4)
		res, err := MustClient(t, px.URL).AppendBulk(ctx, appends)
		if err != nil {
			t.Fatal(err)
		}
		// The first was answered before the cut; the server may or may not
		// have stored the others before it noticed.
		mustBulkOK(t, res, 4, nil)
		if res[0].Result.Duplicate {
			t.Fatal("results[0] is a duplicate: it was sent twice")
		}
		_, bodies := px.Requests()
		if len(bodies) != 2 || strings.Count(bodies[1], "\n") != 3 || strings.Contains(bodies[1], `"bulk-cut-1"`) {
			t.Fatalf("requests %q, want the last 3 appends resent", bodies)
		}
		mustVersions(t, MustClient(t, srv), appends)
	})
	t.Run("RetryLineOutcomeUnknown", func(t *testing.T) {
		// The proxy turns line 2's result of the first response into
		// outcome_unknown: the client sends that append again, alone.
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n > 1 {
				return false
			}
			p.ForwardCut(w, r, 1<<30, func(i int, line []byte) []byte {
				if i != 2 {
					return line
				}
				return []byte(`{"type":"urn:eventlog:problem:outcome_unknown","title":"Gateway Timeout","status":504,"code":"outcome_unknown","line":2}` + "\n")
			})
			return true
		})
		appends := bulkOf("bulk-504", 3)
		res, err := MustClient(t, px.URL).AppendBulk(ctx, appends)
		if err != nil {
			t.Fatal(err)
		}
		mustBulkOK(t, res, 3, func(i int) bool { return i == 1 })
		_, bodies := px.Requests()
		if len(bodies) != 2 || strings.Count(bodies[1], "\n") != 1 || !strings.Contains(bodies[1], `"bulk-504-2"`) {
			t.Fatalf("requests %q, want append 2 resent alone", bodies)
		}
		mustVersions(t, MustClient(t, srv), appends)
	})
	t.Run("SpentAfterUnknown", func(t *testing.T) {
		// Line 1 is stored but answered outcome_unknown, then every retry
		// is refused as unavailable: its error still says the outcome is
		// unknown. Line 2 succeeds at once.
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			if n > 1 {
				Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable)
				return true
			}
			p.ForwardCut(w, r, 1<<30, func(i int, line []byte) []byte {
				if i != 1 {
					return line
				}
				return []byte(`{"type":"urn:eventlog:problem:outcome_unknown","title":"Gateway Timeout","status":504,"code":"outcome_unknown","line":1}` + "\n")
			})
			return true
		})
		res, err := MustClient(t, px.URL).AppendBulk(ctx, bulkOf("bulk-spent", 2))
		if err == nil || !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable for the request", err)
		}
		if !errors.Is(res[0].Err, client.ErrOutcomeUnknown) || res[1].Err != nil || res[1].Result == nil {
			t.Fatalf("results %+v, want append 1 unknown and append 2 stored", res)
		}
		if reqs, _ := px.Requests(); len(reqs) != fastRetry.MaxAttempts {
			t.Fatalf("%d requests, want %d", len(reqs), fastRetry.MaxAttempts)
		}
	})
	t.Run("RefusedAsAWhole", func(t *testing.T) {
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
			Problem(w, http.StatusUnsupportedMediaType, client.CodeUnsupportedMediaType)
			return true
		})
		res, err := MustClient(t, px.URL).AppendBulk(ctx, bulkOf("bulk-415", 2))
		if !errors.Is(err, &client.Problem{Code: client.CodeUnsupportedMediaType}) || len(res) != 2 || res[0].Err == nil {
			t.Fatalf("results %+v, err %v; want the 415 for the request and each append", res, err)
		}
		if reqs, _ := px.Requests(); len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
	})
}

// TestAppendBulkAfterServerDeadline: the server's bulk deadline passes
// while the body is still arriving (a slow upload: the proxy holds back
// the lines after the first), so it answers the next line 503 unavailable
// and ends the request without processing the others. That end is
// transient like a cut: the client sends every append without a result
// again, not only the one the 503 named (the others were once final
// ErrBulkNotProcessed, never written although a retry would have).
func TestAppendBulkAfterServerDeadline(t *testing.T) {
	srv := MustServerConfig(t, func(c *httpapi.Config) { c.BulkTimeout = time.Second })
	px := MustProxy(t, srv)
	px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		body, _ := io.ReadAll(r.Body)
		first := bytes.IndexByte(body, '\n') + 1
		pr, pw := io.Pipe()
		defer pr.Close() // unblocks the writer once the server stopped reading
		go func() {
			pw.Write(body[:first])
			time.Sleep(1500 * time.Millisecond) // past the server's deadline
			pw.Write(body[first:])
			pw.Close()
		}()
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), pr)
		out.Header = r.Header.Clone()
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
		io.Copy(w, res.Body)
		return true
	})
	appends := bulkOf("bulk-late", 3)
	res, err := MustClient(t, px.URL).AppendBulk(ctx(t), appends)
	if err != nil {
		t.Fatal(err)
	}
	mustBulkOK(t, res, 3, func(int) bool { return false })
	_, bodies := px.Requests()
	if len(bodies) != 2 || strings.Count(bodies[1], "\n") != 2 || strings.Contains(bodies[1], `"bulk-late-1"`) {
		t.Fatalf("requests %q, want the last 2 appends resent", bodies)
	}
	mustVersions(t, MustClient(t, srv), appends)

	// Without retries, each append not processed says so, with the cause.
	px2 := MustProxy(t, srv)
	px2.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool { return px.fault(p, 1, w, r) })
	c, err := client.New(client.Options{BaseURL: px2.URL, Retry: client.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.AppendBulk(ctx(t), bulkOf("bulk-late-once", 3))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || !errors.Is(res[1].Err, client.ErrUnavailable) ||
		!errors.Is(res[2].Err, client.ErrBulkNotProcessed) || !errors.Is(res[2].Err, client.ErrUnavailable) {
		t.Fatalf("results %+v, want 1 stored, 2 unavailable, 3 not processed (unavailable)", res)
	}
}
