package spectest_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/httpapi/spectest"
)

func TestDescriptionLoads(t *testing.T) {
	v := spectest.Load(t)
	if got := v.Doc().OpenAPI; got != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", got)
	}
}

const event = `{"id":"0190a1b2-0000-7000-8000-000000000001","type":"UserCreated","version":1,"time":"2026-11-22T10:47:30.368000Z","data":{"name":"Ada"}}`

// exchange builds a complete exchange.
func exchange(method, target, reqType, reqBody string, status int, respType, respBody string) *spectest.Exchange {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	if reqType != "" {
		h.Set("Content-Type", reqType)
	}
	rh := http.Header{"X-Request-Id": {"r-1"}}
	if respType != "" {
		rh.Set("Content-Type", respType)
	}
	return &spectest.Exchange{
		Method: method, URL: u, Header: h, Body: []byte(reqBody), BodyComplete: true,
		Status: status, ResponseHeader: rh, ResponseBody: []byte(respBody), ResponseComplete: true,
	}
}

// TestCheck shows the validator tells described exchanges from drift: each
// "Err" case is a server answer the description does not allow.
func TestCheck(t *testing.T) {
	v := spectest.Load(t)
	page := `{"stream":"user-1","events":[` + event + `],"next":null}`
	problem := func(status int, code string) string {
		return `{"type":"urn:eventlog:problem:` + code + `","title":"x","status":` + itoa(status) + `,"code":"` + code + `","request_id":"r-1"}`
	}
	cases := []struct {
		name    string
		ex      *spectest.Exchange
		wantErr string
	}{
		{"OK", exchange("GET", "/v1/streams/user-1/events?limit=10", "", "", 200, "application/json", page), ""},
		{"OKReplay", exchange("GET", "/v1/streams/user-1/events", "", "", 200, "application/x-ndjson", event+"\n"+event+"\n"), ""},
		{"OKProblem", exchange("GET", "/v1/streams/user-1", "", "", 404, "application/problem+json", problem(404, "stream_not_found")), ""},
		{"OKBadRequestRefused", exchange("GET", "/v1/streams/user-1/events?limit=0", "", "", 400, "application/problem+json", problem(400, "invalid_request")), ""},
		{"OKUnknownRoute", exchange("GET", "/v2/nothing", "", "", 404, "application/problem+json", problem(404, "not_found")), ""},
		{"OKSSE", exchange("GET", "/v1/streams/user-1/subscribe", "", "", 200, "text/event-stream", "retry: 1000\n\n: heartbeat\n\nid: 1\ndata: "+event+"\n\nid: 2\ndata: {"), ""},
		{"OKBulkBadLine", exchange("POST", "/v1/events", "application/x-ndjson", `{"stream":"s-1","events":[{"type":"t","data":1}]}`+"\n{\n", 200, "application/x-ndjson",
			`{"line":1,"status":201,"stream":"s-1","first_version":1,"last_version":1,"events":[{"id":"0190a1b2-0000-7000-8000-000000000001","version":1}],"time":"2026-11-22T10:47:30.368000Z","duplicate":false}`+"\n"+
				`{"type":"urn:eventlog:problem:invalid_json","title":"Bad Request","status":400,"code":"invalid_json","line":2,"request_id":"r-1"}`+"\n"), ""},

		{"ErrUndocumentedMember", exchange("GET", "/v1/streams/user-1/events", "", "", 200, "application/json", strings.Replace(page, `"next"`, `"extra":1,"next"`, 1)), "extra"},
		{"ErrUndocumentedStatus", exchange("GET", "/healthz", "", "", 418, "application/problem+json", problem(418, "invalid_request")), "418"},
		{"ErrUndocumentedCode", exchange("GET", "/v1/streams/user-1", "", "", 404, "application/problem+json", problem(404, "lease_lost")), "code"},
		{"ErrUndocumentedMediaType", exchange("GET", "/v1/streams/user-1", "", "", 200, "text/html", "<p>"), "text/html"},
		{"ErrUndocumentedRoute", exchange("GET", "/v1/nothing", "", "", 200, "application/json", "{}"), "not in the description"},
		{"ErrAcceptedInvalidRequest", exchange("GET", "/v1/streams/user-1/events?limit=0", "", "", 200, "application/json", page), "accepted"},
		{"ErrBadEventInReplay", exchange("GET", "/v1/streams/user-1/events", "", "", 200, "application/x-ndjson", event+"\n"+`{"id":"x"}`+"\n"), "doesn't match"},
		{"ErrBadEventInSSE", exchange("GET", "/v1/streams/user-1/subscribe", "", "", 200, "text/event-stream", "id: 1\ndata: {\"version\":1}\n\n"), "doesn't match"},
		{"ErrNoRequestID", func() *spectest.Exchange {
			ex := exchange("GET", "/v1/streams/user-1/events", "", "", 200, "application/json", page)
			ex.ResponseHeader.Del("X-Request-Id")
			return ex
		}(), "X-Request-Id"},
		{"ErrNoRequestIDUnrouted", func() *spectest.Exchange {
			ex := exchange("GET", "/v2/nothing", "", "", 404, "application/problem+json", problem(404, "not_found"))
			ex.ResponseHeader.Del("X-Request-Id")
			return ex
		}(), "X-Request-Id"},
		{"ErrProblemWithoutRequestID", exchange("GET", "/v1/streams/user-1", "", "", 404, "application/problem+json", strings.Replace(problem(404, "stream_not_found"), `,"request_id":"r-1"`, "", 1)), "request_id"},
		{"ErrBulkBadLineUnanswered", exchange("POST", "/v1/events", "application/x-ndjson", "{\n", 200, "application/x-ndjson", ""), "no problem answers it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Check(c.ex)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("Check passed, want an error about %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("Check: %v, want an error about %q", err, c.wantErr)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// failingWriter fails every body write after the first n bytes, as a
// connection the client closed does.
type failingWriter struct {
	http.ResponseWriter
	n int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return w.ResponseWriter.Write(p)
	}
	k := w.n
	w.n = 0
	_, _ = w.ResponseWriter.Write(p[:k])
	return k, errors.New("client went away")
}

// A response whose client went away mid-body is judged by its status and
// headers only: the bytes kept are a prefix, not the answer. (A zstd
// answer cut so read as "unexpected EOF", a false failure of the console
// test whose browser moved on.)
func TestHandlerCutResponse(t *testing.T) {
	page := []byte(`{"stream":"user-1","events":[` + event + `],"next":null}`)
	h := spectest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "r-1")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(page)
	}))
	r := httptest.NewRequest(http.MethodGet, "/v1/streams/user-1/events?limit=10", nil)
	// Cut after 20 bytes: as a complete body, the prefix would fail the
	// schema (and Handler would report it with t.Errorf).
	h.ServeHTTP(&failingWriter{ResponseWriter: httptest.NewRecorder(), n: 20}, r)
}
