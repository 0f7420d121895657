package httpapi_test

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestLogFloodsBounded: requests anyone can send without a key — bad
// tokens (401), foreign Host headers (421) — each wrote an info line, so
// a flood of them flooded the log. Now N of them write a bounded number of
// lines, and the metrics count them all.
func TestLogFloodsBounded(t *testing.T) {
	var logs syncBuffer
	as := MustAuthServer(t, auth.Options{}, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.AllowedHosts = []string{"127.0.0.1"}
	})
	admin := as.MustToken(t, "admin", 0, "admin")
	const n = 100
	start := time.Now()
	for i := range n {
		MustProblem(t, as.As(t, "Bearer el_bad"+strconv.Itoa(i), "GET", "/v1/streams/s-1", ""), http.StatusUnauthorized, "unauthenticated")
		req, _ := http.NewRequest("GET", as.URL+"/v1/streams/s-1", nil)
		req.Host = "evil.example"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("Host evil.example: %d", res.StatusCode)
		}
	}
	windows := int(time.Since(start)/httpapi.LogFloodWindow) + 1
	lines := map[float64]int{}
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" {
			s, _ := l["status"].(float64)
			lines[s]++
		}
	}
	r := as.As(t, admin, "GET", "/metrics", "")
	if r.Status != http.StatusOK {
		t.Fatal(r)
	}
	for _, c := range []struct {
		status int
		kind   string
	}{{401, "unauthenticated"}, {421, "invalid_host"}} {
		got := lines[float64(c.status)]
		if got == 0 || got > windows*httpapi.LogFloodLines {
			t.Errorf("%d answers %d: %d log lines, want 1 to %d", n, c.status, got, windows*httpapi.LogFloodLines)
		}
		if total := metricSum(t, r.Body, "eventlog_http_requests_total", `status="`+strconv.Itoa(c.status)+`"`); total != n {
			t.Errorf("eventlog_http_requests_total of status %d: %v, want %d", c.status, total, n)
		}
		if sup := metricSum(t, r.Body, "eventlog_log_lines_suppressed_total", `kind="`+c.kind+`"`); int(sup)+got != n {
			t.Errorf("%s: %v lines suppressed and %d written, want %d in all", c.kind, sup, got, n)
		}
	}
}

// metricSum adds the values of the samples of metric whose labels hold
// label, in a Prometheus text exposition.
func metricSum(tb testing.TB, exposition []byte, metric, label string) float64 {
	tb.Helper()
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(exposition)))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, metric+"{") || !strings.Contains(l, label) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			tb.Fatalf("%q: %v", l, err)
		}
		sum += v
	}
	return sum
}

// TestKeyedClientErrorLogsBounded: a valid key's 4xx answers (403 for a
// stream outside its scopes, 404 for a missing one) each wrote an info
// line, without a bound when --rate-limit is 0 (the default), so a
// client with any key could flood the log. Now each 4xx status is a kind
// of its own, written at most LogFloodLines a window, the rest counted.
func TestKeyedClientErrorLogsBounded(t *testing.T) {
	var logs syncBuffer
	as := MustAuthServer(t, auth.Options{}, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	admin := as.MustToken(t, "admin", 0, "admin")
	reader := as.MustToken(t, "reader", 0, "read:a-*")
	const n = 100
	start := time.Now()
	for range n {
		MustProblem(t, as.As(t, reader, "GET", "/v1/streams/b-1/state", ""), http.StatusForbidden, "forbidden")
		MustProblem(t, as.As(t, reader, "GET", "/v1/streams/a-missing/state", ""), http.StatusNotFound, "stream_not_found")
	}
	windows := int(time.Since(start)/httpapi.LogFloodWindow) + 1
	lines := map[float64]int{}
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" {
			s, _ := l["status"].(float64)
			lines[s]++
		}
	}
	r := as.As(t, admin, "GET", "/metrics", "")
	if r.Status != http.StatusOK {
		t.Fatal(r)
	}
	for _, status := range []int{403, 404} {
		got := lines[float64(status)]
		if got == 0 || got > windows*httpapi.LogFloodLines {
			t.Errorf("%d answers %d: %d log lines, want 1 to %d", n, status, got, windows*httpapi.LogFloodLines)
		}
		kind := "client_error_" + strconv.Itoa(status)
		if sup := metricSum(t, r.Body, "eventlog_log_lines_suppressed_total", `kind="`+kind+`"`); int(sup)+got != n {
			t.Errorf("%s: %v lines suppressed and %d written, want %d in all", kind, sup, got, n)
		}
	}
}
