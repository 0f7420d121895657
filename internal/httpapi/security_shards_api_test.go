package httpapi_test

import (
	"context"
	"fmt"
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
// server of mustShardGroupServer): its own store, registry and API, no
// forwarding (for group and key routes, which need none).
func (ts *testServer) shardInstance(tb testing.TB) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := ts.Opts
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
	other := &testServer{Opts: o, API: api}
	other.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(other.Close)
	return other
}

// TestDeletedGroupLeavesMetrics (shard-log path): a deleted group's lag
// gauge goes with it, so /metrics no longer names it; a describe that
// finds a group deleted elsewhere drops the gauge too.
func TestDeletedGroupLeavesMetrics(t *testing.T) {
	ts := MustShardGroupServer(t)
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
