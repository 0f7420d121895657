package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/eventlog/eventlog/internal/httpapi"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records written so far.
func (s *syncBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestRequestID(t *testing.T) {
	var logs syncBuffer
	ts := MustServer(t, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})

	t.Run("Echoed", func(t *testing.T) {
		r := ts.Do(t, "GET", "/v1/streams/rid-1", nil, "X-Request-Id", "req-abc.1")
		p := MustProblem(t, r, http.StatusNotFound, "stream_not_found")
		if got := r.Header.Get("X-Request-Id"); got != "req-abc.1" {
			t.Fatalf("X-Request-Id %q, want req-abc.1", got)
		}
		if p["request_id"] != "req-abc.1" {
			t.Fatalf("problem request_id %v", p["request_id"])
		}
	})
	t.Run("Generated", func(t *testing.T) {
		for _, sent := range []string{"", "has space", strings.Repeat("x", 129), `quote"d`} {
			r := ts.Do(t, "GET", "/v1/streams/bad%20id", nil, "X-Request-Id", sent)
			p := MustProblem(t, r, http.StatusBadRequest, "invalid_stream_id")
			id := r.Header.Get("X-Request-Id")
			if !uuidRE.MatchString(id) || p["request_id"] != id {
				t.Fatalf("sent %q: X-Request-Id %q, problem request_id %v", sent, id, p["request_id"])
			}
		}
	})
	t.Run("BulkProblemLines", func(t *testing.T) {
		r := ts.Do(t, "POST", "/v1/events", []byte("{\n"), "Content-Type", "application/x-ndjson", "X-Request-Id", "bulk-7")
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"request_id":"bulk-7"`) {
			t.Fatalf("bulk: %s", r)
		}
	})
	t.Run("Logs", func(t *testing.T) {
		ts.Do(t, "GET", "/healthz", nil, "X-Request-Id", "probe-1")
		ts.MustAppend(t, "rid-2", 1)
		ts.Do(t, "GET", "/v1/streams/rid-missing", nil, "X-Request-Id", "missing-1")
		var probe, appendLine, missing map[string]any
		for _, l := range logs.lines(t) {
			if l["msg"] != "request" {
				continue
			}
			switch l["route"] {
			case "/healthz":
				probe = l
			case "/v1/streams/:stream/events":
				appendLine = l
			case "/v1/streams/:stream":
				if l["request_id"] == "missing-1" {
					missing = l
				}
			}
			if l["request_id"] == nil || l["request_id"] == "" {
				t.Errorf("access log line without request_id: %v", l)
			}
		}
		if probe == nil || probe["level"] != "DEBUG" || probe["request_id"] != "probe-1" {
			t.Fatalf("probe log line %v, want DEBUG with request_id probe-1", probe)
		}
		if missing == nil || missing["level"] != "INFO" || missing["status"] != float64(404) {
			t.Fatalf("404 log line %v, want INFO with status 404", missing)
		}
		// A successful request is logged at debug level (AccessLog "errors").
		if appendLine == nil || appendLine["level"] != "DEBUG" || !uuidRE.MatchString(appendLine["request_id"].(string)) {
			t.Fatalf("append log line %v, want DEBUG with a generated request_id", appendLine)
		}
	})
}
