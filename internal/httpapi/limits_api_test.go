package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/klauspost/compress/zstd"
)

func zstdBody(tb testing.TB, b []byte) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// TestBulkLimits: the newline bomb (a tiny zstd body of newlines) ends at
// the line cap, as blank lines count; a body past the decoded byte cap
// ends with payload_too_large; nothing past either is written.
func TestBulkLimits(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) { c.MaxBulkBytes = 8 << 10 }) // 20 lines, 8 KiB
	t.Run("NewlineBomb", func(t *testing.T) {
		bomb := zstdBody(t, bytes.Repeat([]byte("\n"), 64<<20))
		if len(bomb) > 64<<10 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		start := time.Now()
		res := bulkResults(t, ts, bomb, "Content-Encoding", "zstd")
		if len(res) != 1 || res[0]["code"] != "payload_too_large" || res[0]["line"] != float64(21) {
			t.Fatalf("results %v, want one payload_too_large at line 21", res)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the newline bomb took %v", d)
		}
	})
	t.Run("BlankLinesCount", func(t *testing.T) {
		body := strings.Repeat("\n", 19) + `{"stream":"blank-1","events":[{"type":"t","data":1}]}` + "\n" +
			`{"stream":"blank-2","events":[{"type":"t","data":1}]}` + "\n"
		res := bulkResults(t, ts, []byte(body))
		if len(res) != 2 || res[0]["status"] != float64(201) || res[1]["code"] != "payload_too_large" || res[1]["line"] != float64(21) {
			t.Fatalf("results %v", res)
		}
		ts.MustVersion(t, "blank-1", 1)
		ts.MustNotExist(t, "blank-2")
	})
	t.Run("DecodedBytes", func(t *testing.T) {
		var b strings.Builder
		for i := range 10 { // 10 lines of ~1.1 KiB: past 8 KiB at the 8th
			fmt.Fprintf(&b, `{"stream":"bytes-%d","events":[{"type":"t","data":"%s"}]}`+"\n", i, strings.Repeat("x", 1024))
		}
		res := bulkResults(t, ts, gz(t, []byte(b.String())), "Content-Encoding", "gzip")
		last := res[len(res)-1]
		if last["code"] != "payload_too_large" || len(res) > 8 {
			t.Fatalf("results %v", res)
		}
		for i := range res[:len(res)-1] {
			if res[i]["status"] != float64(201) {
				t.Fatalf("line %d: %v", i+1, res[i])
			}
		}
		ts.MustNotExist(t, "bytes-9")
	})
}

// TestLastEventIDOverflow: a Last-Event-ID whose next version overflows is
// 400, not a stream that is cut (and reconnected every second).
func TestLastEventIDOverflow(t *testing.T) {
	ts := MustServer(t, nil)
	for _, h := range []string{"9223372036854775807", "9223372036854775808", "-1", "x"} {
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/ovf-1/subscribe", nil, "Last-Event-ID", h), http.StatusBadRequest, "invalid_request")
	}
	MustProblem(t, ts.Do(t, "GET", "/v1/streams/ovf-1/subscribe?from=9223372036854775807", nil), http.StatusBadRequest, "invalid_request")
}

// openSubscription starts a subscription and returns its status and a
// cancel that ends it.
func openSubscription(tb testing.TB, url string, header ...string) (int, http.Header, func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	return res.StatusCode, res.Header, func() { cancel(); res.Body.Close() }
}

// TestSubscriptionCaps: past the instance's cap (and, with keys, the
// key's), a subscription is 429 too_many_subscriptions with Retry-After;
// a slot frees when a subscriber leaves.
func TestSubscriptionCaps(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, func(c *httpapi.Config) { c.MaxSubscriptions, c.MaxSubscriptionsPerKey = 3, 2 })
	k1 := as.MustToken(t, "k1", 0, "read:*")
	k2 := as.MustToken(t, "k2", 0, "read:*")
	sub := func(bearer, path string) (int, http.Header, func()) {
		return openSubscription(t, as.URL+path, "Authorization", bearer)
	}
	s1, _, c1 := sub(k1, "/v1/streams/cap-1/subscribe")
	s2, _, c2 := sub(k1, "/v1/feeds/all/subscribe")
	defer c2()
	if s1 != 200 || s2 != 200 {
		t.Fatalf("first two: %d %d", s1, s2)
	}
	r := as.As(t, k1, "GET", "/v1/streams/cap-2/subscribe", "")
	MustProblem(t, r, http.StatusTooManyRequests, "too_many_subscriptions")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	s3, _, c3 := sub(k2, "/v1/streams/cap-3/subscribe") // another key: the instance's third
	defer c3()
	if s3 != 200 {
		t.Fatalf("other key: %d", s3)
	}
	MustProblem(t, as.As(t, k2, "GET", "/v1/feeds/all/subscribe", ""), http.StatusTooManyRequests, "too_many_subscriptions")

	c1() // a slot frees once the server sees the client gone
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, c := sub(k1, "/v1/streams/cap-4/subscribe")
		c()
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a subscriber left: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPageBytes: a page ends at MaxPageBytes (at an event boundary), and
// its next reads on without a gap.
func TestPageBytes(t *testing.T) {
	ts := MustFeedServer(t, func(c *httpapi.Config) { c.MaxPageBytes = 2000 })
	for i := range 5 {
		if r := ts.Append(t, "big-1", fmt.Sprintf(`{"events":[{"type":"Big","data":{"i":%d,"pad":"%s"}}]}`, i, strings.Repeat("p", 800))); r.Status != 201 {
			t.Fatal(r)
		}
	}
	var got []int64
	from := int64(1)
	for from > 0 {
		p := mustPage(t, ts.Do(t, "GET", fmt.Sprintf("/v1/streams/big-1/events?from=%d&limit=100", from), nil))
		if len(p.Events) > 3 || len(p.Events) == 0 {
			t.Fatalf("page of %d events of ~900 bytes with a 2000-byte cap", len(p.Events))
		}
		got = append(got, versions(p.Events)...)
		from = 0
		if p.Next != nil {
			from = *p.Next
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("versions %v", got)
	}

	var n int
	next := ""
	for range 10 {
		fp := mustFeedPage(t, ts.Do(t, "GET", "/v1/feeds/type/Big?limit=100&from="+next, nil))
		if len(fp.Events) > 3 {
			t.Fatalf("feed page of %d events", len(fp.Events))
		}
		n += len(fp.Events)
		if len(fp.Events) == 0 {
			break
		}
		next = fp.Next
	}
	if n != 5 {
		t.Fatalf("feed pages held %d events, want 5", n)
	}
}

// TestSecurityHeaders: every answer (success, problem, 404, stream) says
// nosniff and no-store; a Host outside AllowedHosts is 421 invalid_host.
func TestSecurityHeaders(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) { c.AllowedHosts = []string{"127.0.0.1", "localhost"} })
	ts.MustAppend(t, "hdr-1", 1)
	for _, r := range []response{
		ts.Do(t, "GET", "/v1/streams/hdr-1", nil),
		ts.Do(t, "GET", "/v1/streams/hdr-1/events", nil, "Accept", "application/x-ndjson"),
		ts.Do(t, "GET", "/v1/streams/nope-1", nil),
		ts.Do(t, "GET", "/v2/nothing", nil),
		ts.Do(t, "GET", "/healthz", nil),
		ts.Do(t, "GET", "/metrics", nil),
	} {
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", r, r.Header)
		}
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/streams/hdr-1", nil)
	req.Host = "rebound.example:80"
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %d", res.StatusCode)
	}
}

// TestRateLimit: a key's requests past its rate (its own, else the
// server's) are 429 rate_limited with Retry-After; another key is not
// affected; the bucket refills.
func TestRateLimit(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, func(c *httpapi.Config) { c.RateLimit, c.RateBurst = 2, 2 })
	slow := as.MustToken(t, "slow", 0, "read:*")
	k, tok, err := auth.NewKey("fast", []string{"read:*"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.RateLimit = 1000
	if err := as.Keys.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if err := as.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	fast := "Bearer " + tok
	codes := func(bearer string, n int) (out []int, last response) {
		for range n {
			last = as.As(t, bearer, "GET", "/v1/streams/rl-1", "")
			out = append(out, last.Status)
		}
		return out, last
	}
	got, last := codes(slow, 3)
	if fmt.Sprint(got) != "[404 404 429]" {
		t.Fatalf("slow key: %v", got)
	}
	MustProblem(t, last, http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if got, _ := codes(fast, 10); strings.Contains(fmt.Sprint(got), "429") {
		t.Fatalf("the key with its own rate: %v", got)
	}
	time.Sleep(600 * time.Millisecond) // 2/s: a token is back
	if got, _ := codes(slow, 1); got[0] != 404 {
		t.Fatalf("after a refill: %v", got)
	}
}

// TestRateLimitRetryAfterTinyRate: a key whose own rate is tiny (a
// request every few centuries, as an admin may set "rate_limit" to slow a
// key almost to a halt) is refused with a Retry-After that is a
// non-negative number of seconds (RFC 9110 §10.2.3): the wait, past what a
// time.Duration holds, once overflowed to a negative one.
func TestRateLimitRetryAfterTinyRate(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	r := as.As(t, root, "POST", "/v1/admin/keys", `{"name":"crawl","scopes":["read:*"],"rate_limit":1e-12}`, "Content-Type", jsonCT)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	crawl := "Bearer " + r.JSON(t)["token"].(string)
	if r := as.As(t, crawl, "GET", "/v1/streams/rl-tiny", ""); r.Status != http.StatusNotFound {
		t.Fatalf("first request (the burst): %s", r)
	}
	r = as.As(t, crawl, "GET", "/v1/streams/rl-tiny", "")
	MustProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	ra := r.Header.Get("Retry-After")
	if n, err := strconv.ParseInt(ra, 10, 64); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", ra)
	}
}
