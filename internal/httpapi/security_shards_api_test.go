package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/prometheus/client_golang/prometheus"
)

// shardInstance starts another shard-path instance on ts's keyspace (a
// server of mustGroupServer): its own store, registry and API, no
// forwarding (for group and key routes, which need none).
func (ts *testServer) shardInstance(tb testing.TB) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := ts.Opts.Cassandra
	o.Registerer = reg
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits, Registry: reg})
	if err != nil {
		tb.Fatal(err)
	}
	other := &testServer{Opts: shardstore.Options{Cassandra: o}, API: api}
	other.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(other.Close)
	return other
}

// TestDeletedGroupLeavesMetrics (shard-log path): a deleted group's lag
// gauge goes with it, so /metrics no longer names it; a describe that
// finds a group deleted elsewhere drops the gauge too.
func TestDeletedGroupLeavesMetrics(t *testing.T) {
	ts := MustGroupServer(t)
	ts.MustAppend(t, "gm-1", 2)
	other := ts.shardInstance(t)
	for _, g := range []string{"gone-here", "gone-there"} {
		if r, _ := ts.join(t, g, `{"feed":"category/gm","member":"a"}`); r.Status != http.StatusOK {
			t.Fatalf("join %s: %s", g, r)
		}
		ts.describe(t, g)
		if v := ts.lagMetric(t, g); v != "2" {
			t.Fatalf("lag gauge of %s before the delete: %q", g, v)
		}
	}
	if r := ts.Do(t, "DELETE", "/v1/groups/gone-here", nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	if v := ts.lagMetric(t, "gone-here"); v != "" {
		t.Fatalf("the deleted group is still in /metrics: %q", v)
	}
	// Deleted through another instance: this one learns it on a describe
	// once its cached group row is stale (groups.groupCacheFor, 5s).
	if r := other.Do(t, "DELETE", "/v1/groups/gone-there", nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete through the other instance: %s", r)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := ts.Do(t, "GET", "/v1/groups/gone-there", nil)
		if r.Status == http.StatusNotFound {
			MustProblem(t, r, http.StatusNotFound, "group_not_found")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe of a group deleted elsewhere: %s", r)
		}
	}
	if v := ts.lagMetric(t, "gone-there"); v != "" {
		t.Fatalf("the group deleted elsewhere is still in /metrics after a describe: %q", v)
	}
}

// TestStrictPayloadsAPI (shard-log path): with StrictPayloads, an append
// or bulk line whose data or metadata repeats a key, holds a lone
// surrogate or nests too deep is 400 invalid_event and writes nothing;
// a server without it stores the same append.
func TestStrictPayloadsAPI(t *testing.T) {
	sa := mustShardAuth(t, func(c *httpapi.Config) {
		c.Auth, c.Keys, c.StrictPayloads, c.MaxPayloadDepth = nil, nil, true, 8
	})
	ct := []string{"Content-Type", jsonCT}
	for name, data := range map[string]string{
		"DuplicateKey":  `{"amount":1,"amount":1000}`,
		"LoneSurrogate": `{"name":"\ud800"}`,
		"TooDeep":       `[[[[[[[[[1]]]]]]]]]`,
	} {
		t.Run(name, func(t *testing.T) {
			stream := "strict-" + strings.ToLower(name)
			MustProblem(t, sa.Do(t, "POST", "/v1/streams/"+stream+"/events", []byte(`{"events":[{"type":"t","data":`+data+`}]}`), ct...),
				http.StatusBadRequest, "invalid_event")
			MustProblem(t, sa.Do(t, "POST", "/v1/streams/"+stream+"/events", []byte(`{"events":[{"type":"t","data":1,"metadata":`+data+`}]}`), ct...),
				http.StatusBadRequest, "invalid_event")
			res := bulkResults(t, sa.testServer, []byte(`{"stream":"`+stream+`","events":[{"type":"t","data":`+data+`}]}`+"\n"))
			if len(res) != 1 || res[0]["status"] != float64(400) || res[0]["code"] != "invalid_event" {
				t.Fatalf("bulk line: %v", res)
			}
			sa.MustNotExist(t, stream)
		})
	}
	if r := sa.Append(t, "strict-ok", `{"events":[{"type":"t","data":{"a":{"a":[1,{"a":"\ud83d\ude00"}]}}}]}`); r.Status != http.StatusCreated {
		t.Fatalf("a strict payload: %s", r)
	}
	lax := mustShardAuth(t, func(c *httpapi.Config) { c.Auth, c.Keys = nil, nil })
	if r := lax.Append(t, "lax-1", `{"events":[{"type":"t","data":{"amount":1,"amount":1000}}]}`); r.Status != http.StatusCreated {
		t.Fatalf("without strict payloads: %s", r)
	}
}

// TestGroupReadPageBytes (shard-log path): a consumer group read ends at
// MaxPageBytes, as stream and feed pages do; its partitions' next stop at
// the last event returned, so reading and acknowledging on hands out
// every event once.
func TestGroupReadPageBytes(t *testing.T) {
	sa := mustShardAuth(t, func(c *httpapi.Config) { c.Auth, c.Keys, c.MaxPageBytes = nil, nil, 2000 })
	ts := sa.testServer
	for i := range 5 {
		if r := ts.Append(t, "gbig-1", fmt.Sprintf(`{"events":[{"type":"Big","data":{"i":%d,"pad":"%s"}}]}`, i, strings.Repeat("p", 800))); r.Status != http.StatusCreated {
			t.Fatal(r)
		}
	}
	if r, _ := ts.join(t, "gb", `{"feed":"category/gbig","member":"a"}`); r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	var got []int64
	for range 10 {
		var p groupPageResp
		r := ts.memberDo(t, "GET", "/v1/groups/gb/members/a/events?limit=100", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("read: %s", r)
		}
		mustDecode(t, r, &p)
		if len(p.Events) == 0 {
			break
		}
		if len(p.Events) > 3 {
			t.Fatalf("a group page of %d events of ~900 bytes with a 2000-byte cap", len(p.Events))
		}
		for _, e := range p.Events {
			got = append(got, e.Version)
		}
		if r := ts.ackAll(t, "gb", "a", p); r.Status != http.StatusOK {
			t.Fatalf("ack: %s", r)
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("versions read %v, want each of 1..5 once", got)
	}
}

// TestFindingsShards (shard-log path): the regressions of the abuse
// findings, on the write path that stays. The newline bomb (a 2 KiB zstd
// body of 64 MiB of newlines) ends at the line cap, as blank lines count;
// an overflowing or malformed Last-Event-ID is 400, on stream and feed
// subscriptions; a Host outside the allowed names (DNS rebinding) is 421
// and every answer says nosniff and no-store; subscriptions past the cap
// are 429 with Retry-After.
func TestFindingsShards(t *testing.T) {
	sa := mustShardAuth(t, func(c *httpapi.Config) {
		c.Auth, c.Keys = nil, nil
		c.AllowedHosts = []string{"127.0.0.1", "localhost"}
		c.MaxSubscriptions = 2
	})
	ts := sa.testServer
	ts.MustAppend(t, "find-1", 1)

	t.Run("NewlineBomb", func(t *testing.T) {
		bomb := zstdBody(t, bytes.Repeat([]byte("\n"), 64<<20))
		start := time.Now()
		res := bulkResults(t, ts, bomb, "Content-Encoding", "zstd")
		if len(res) != 1 || res[0]["code"] != "payload_too_large" || res[0]["line"] != float64(21) {
			t.Fatalf("results %v, want one payload_too_large at line 21", res)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the newline bomb (%d bytes) took %v", len(bomb), d)
		}
	})
	t.Run("LastEventID", func(t *testing.T) {
		for _, h := range []string{"9223372036854775807", "9223372036854775808", "-1", "x"} {
			MustProblem(t, ts.Do(t, "GET", "/v1/streams/find-1/subscribe", nil, "Last-Event-ID", h), http.StatusBadRequest, "invalid_request")
			MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all/subscribe", nil, "Last-Event-ID", h), http.StatusBadRequest, "invalid_position")
		}
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/find-1/subscribe?from=9223372036854775807", nil), http.StatusBadRequest, "invalid_request")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/find-1/events?from=99999999999999999999", nil), http.StatusBadRequest, "invalid_request")
		MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all?limit=10001", nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("Host", func(t *testing.T) {
		for _, r := range []response{
			ts.Do(t, "GET", "/v1/streams/find-1", nil),
			ts.Do(t, "GET", "/v1/streams/find-1/events", nil, "Accept", "application/x-ndjson"),
			ts.Do(t, "GET", "/v1/feeds/all", nil),
			ts.Do(t, "GET", "/v1/streams/nope-1", nil),
			ts.Do(t, "GET", "/healthz", nil),
		} {
			if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: headers %v", r, r.Header)
			}
		}
		for _, host := range []string{"rebound.example", "rebound.example:80", "127.0.0.1.nip.io"} {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/streams/find-1", nil)
			req.Host = host
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusMisdirectedRequest || !bytes.Contains(b, []byte(`"code":"invalid_host"`)) {
				t.Fatalf("Host %s: %d %s", host, res.StatusCode, b)
			}
		}
	})
	t.Run("SubscriptionCap", func(t *testing.T) {
		s1, _, c1 := openSubscription(t, ts.URL+"/v1/streams/find-1/subscribe")
		defer c1()
		s2, _, c2 := openSubscription(t, ts.URL+"/v1/feeds/all/subscribe")
		defer c2()
		if s1 != 200 || s2 != 200 {
			t.Fatalf("first two: %d %d", s1, s2)
		}
		r := ts.Do(t, "GET", "/v1/streams/find-2/subscribe", nil)
		MustProblem(t, r, http.StatusTooManyRequests, "too_many_subscriptions")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}
