package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/prometheus/client_golang/prometheus"
)

// MustGroupServer is MustServer with 1s group leases and 16 shards (so a
// group has 16 partitions).
func MustGroupServer(tb testing.TB) *testServer {
	tb.Helper()
	return mustGroupServer(tb, nil)
}

// mustGroupServer is MustGroupServer with mod applied to the store's
// options.
func mustGroupServer(tb testing.TB, mod func(*shardstore.Options)) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits, o.Registerer, o.Shards = testLimits, reg, 16
		o.GroupLeaseTTL, o.GroupLeaseGrace = time.Second, 100*time.Millisecond
		if mod != nil {
			mod(so)
		}
	})
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits, Registry: reg})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Store: store, Opts: opts, API: api}
	ts.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return ts
}

type membershipResp struct {
	Member     string `json:"member"`
	Secret     string `json:"secret"`
	Feed       string `json:"feed"`
	LeaseTTLMs int64  `json:"lease_ttl_ms"`
	Partitions []struct {
		Partition  int    `json:"partition"`
		Epoch      int64  `json:"epoch"`
		Checkpoint string `json:"checkpoint"`
	} `json:"partitions"`
	Revoked []struct {
		Partition int   `json:"partition"`
		Epoch     int64 `json:"epoch"`
	} `json:"revoked"`
}

type groupPageResp struct {
	Events []struct {
		Stream    string `json:"stream"`
		Position  string `json:"position"`
		Partition int    `json:"partition"`
		Version   int64  `json:"version"`
		Type      string `json:"type"`
	} `json:"events"`
	Partitions []struct {
		Partition int    `json:"partition"`
		Epoch     int64  `json:"epoch"`
		Next      string `json:"next"`
	} `json:"partitions"`
	CompleteUpTo string `json:"complete_up_to"`
}

func (ts *testServer) join(tb testing.TB, group, body string) (response, membershipResp) {
	tb.Helper()
	var req struct{ Member string }
	_ = json.Unmarshal([]byte(body), &req)
	r := ts.Do(tb, "POST", "/v1/groups/"+group+"/members", []byte(body), "Content-Type", "application/json",
		"Eventlog-Member-Secret", ts.secrets[group+"/"+req.Member])
	var m membershipResp
	if r.Status == http.StatusOK {
		mustDecode(tb, r, &m)
		if m.Secret != "" {
			if ts.secrets == nil {
				ts.secrets = map[string]string{}
			}
			ts.secrets[group+"/"+m.Member] = m.Secret
		}
	}
	return r, m
}

// memberPath matches /v1/groups/{group}/members/{member}[/...].
var memberPath = regexp.MustCompile(`^/v1/groups/([^/]+)/members/([^/?]+)`)

// memberDo is Do with the member's secret (from its join) when path is a
// member's.
func (ts *testServer) memberDo(tb testing.TB, method, path string, body []byte, header ...string) response {
	tb.Helper()
	if m := memberPath.FindStringSubmatch(path); m != nil && ts.secrets[m[1]+"/"+m[2]] != "" {
		header = append(header, "Eventlog-Member-Secret", ts.secrets[m[1]+"/"+m[2]])
	}
	return ts.Do(tb, method, path, body, header...)
}

func mustDecode(tb testing.TB, r response, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (ts *testServer) ackAll(tb testing.TB, group, member string, p groupPageResp) response {
	tb.Helper()
	var acks []string
	for _, pr := range p.Partitions {
		acks = append(acks, fmt.Sprintf(`{"partition":%d,"epoch":%d,"position":%q}`, pr.Partition, pr.Epoch, pr.Next))
	}
	return ts.memberDo(tb, "POST", "/v1/groups/"+group+"/members/"+member+"/ack", []byte("["+strings.Join(acks, ",")+"]"), "Content-Type", "application/json")
}

type groupResp struct {
	Feed       string                    `json:"feed"`
	Lag        int64                     `json:"lag"`
	LagCapped  bool                      `json:"lag_capped"`
	Members    []struct{ Member string } `json:"members"`
	Partitions []struct {
		Partition  int    `json:"partition"`
		Owner      string `json:"owner"`
		Epoch      int64  `json:"epoch"`
		Checkpoint string `json:"checkpoint"`
		Lag        int64  `json:"lag"`
	} `json:"partitions"`
}

func (ts *testServer) describe(tb testing.TB, group string) groupResp {
	tb.Helper()
	r := ts.Do(tb, "GET", "/v1/groups/"+group, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("describe: %s", r)
	}
	var g groupResp
	mustDecode(tb, r, &g)
	return g
}

func (ts *testServer) lagMetric(tb testing.TB, group string) string {
	tb.Helper()
	r := ts.Do(tb, "GET", "/metrics", nil)
	prefix := `eventlog_group_lag_events{group="` + group + `"} `
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

// TestGroupsAPI: join, read, acknowledge, describe and leave over real
// HTTP: events carry their position and partition, acknowledged reads do
// not come again, and the lag (GET and /metrics) falls to 0.
func TestGroupsAPI(t *testing.T) {
	ts := MustGroupServer(t)
	for i := range 6 {
		ts.MustAppend(t, fmt.Sprintf("acc-%d", i), 4)
	}

	r, m := ts.join(t, "billing", `{"feed":"category/acc","member":"w-1"}`)
	if r.Status != http.StatusOK || m.Member != "w-1" || m.Feed != "category/acc" || m.LeaseTTLMs != 1000 || len(m.Partitions) != 16 {
		t.Fatalf("join: %s", r)
	}
	if g := ts.describe(t, "billing"); g.Lag != 24 || g.LagCapped || g.Feed != "category/acc" || len(g.Members) != 1 || len(g.Partitions) != 16 {
		t.Fatalf("describe before reading: %+v", g)
	}
	if v := ts.lagMetric(t, "billing"); v != "24" {
		t.Fatalf("lag metric %q, want 24", v)
	}

	seen := map[string]bool{}
	for {
		ts.join(t, "billing", `{"feed":"category/acc","member":"w-1"}`) // heartbeat
		r := ts.memberDo(t, "GET", "/v1/groups/billing/members/w-1/events?limit=5", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("read: %s", r)
		}
		var p groupPageResp
		mustDecode(t, r, &p)
		if len(p.Events) == 0 {
			break
		}
		for _, e := range p.Events {
			k := fmt.Sprintf("%s@%d", e.Stream, e.Version)
			if seen[k] || e.Position == "" || e.Type != "t" {
				t.Fatalf("event %s: seen %v, %+v", k, seen[k], e)
			}
			seen[k] = true
		}
		if r := ts.ackAll(t, "billing", "w-1", p); r.Status != http.StatusOK {
			t.Fatalf("ack: %s", r)
		}
	}
	if len(seen) != 24 {
		t.Fatalf("read %d events, want 24", len(seen))
	}
	if g := ts.describe(t, "billing"); g.Lag != 0 {
		t.Fatalf("lag %d after consuming everything", g.Lag)
	}
	if v := ts.lagMetric(t, "billing"); v != "0" {
		t.Fatalf("lag metric %q, want 0", v)
	}

	// One acknowledgement as a bare object; repeating it is harmless.
	ts.join(t, "billing", `{"feed":"category/acc","member":"w-1"}`)
	var p groupPageResp
	mustDecode(t, ts.memberDo(t, "GET", "/v1/groups/billing/members/w-1/events?partitions=3", nil), &p)
	one := fmt.Sprintf(`{"partition":3,"epoch":%d,"position":%q}`, p.Partitions[0].Epoch, p.Partitions[0].Next)
	for range 2 {
		if r := ts.memberDo(t, "POST", "/v1/groups/billing/members/w-1/ack", []byte(one), "Content-Type", "application/json"); r.Status != http.StatusOK {
			t.Fatalf("single ack: %s", r)
		}
	}

	if r := ts.memberDo(t, "DELETE", "/v1/groups/billing/members/w-1", nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %s", r)
	}
	for _, part := range ts.describe(t, "billing").Partitions {
		if part.Owner != "" {
			t.Fatalf("partition %d still owned by %q after leaving", part.Partition, part.Owner)
		}
	}
}

// TestGroupsAPIErrors: every refusal of the group endpoints, from real
// requests, with its status and stable code.
func TestGroupsAPIErrors(t *testing.T) {
	ts := MustGroupServer(t)
	ts.MustAppend(t, "err-1", 2)
	post := func(path, body string) response {
		return ts.memberDo(t, "POST", path, []byte(body), "Content-Type", "application/json")
	}

	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/nope", nil), 404, "group_not_found")
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/nope/members/a/events", nil), 404, "group_not_found")
	MustProblem(t, post("/v1/groups/nope/members/a/ack", `{"partition":1,"epoch":1}`), 404, "group_not_found")
	MustProblem(t, ts.memberDo(t, "DELETE", "/v1/groups/nope/members/a", nil), 404, "group_not_found")

	MustProblem(t, post("/v1/groups/a%20b/members", `{"feed":"all"}`), 400, "invalid_group")
	MustProblem(t, post("/v1/groups/g/members", `{"feed":"all","member":"a b"}`), 400, "invalid_member")
	MustProblem(t, post("/v1/groups/g/members", `{"feed":"stream/x"}`), 400, "invalid_feed")
	MustProblem(t, post("/v1/groups/g/members", `{}`), 400, "invalid_feed")
	MustProblem(t, post("/v1/groups/g/members", `{"feed":"all","extra":1}`), 400, "invalid_json")
	MustProblem(t, post("/v1/groups/g/members", `{"feed":"all"} {}`), 400, "invalid_json")
	MustProblem(t, ts.memberDo(t, "POST", "/v1/groups/g/members", []byte(`{"feed":"all"}`), "Content-Type", "text/plain"), 415, "unsupported_media_type")

	r, a := ts.join(t, "g", `{"feed":"category/err","member":"a"}`)
	if r.Status != 200 || len(a.Partitions) != 16 {
		t.Fatalf("join: %s", r)
	}
	MustProblem(t, post("/v1/groups/g/members", `{"feed":"all","member":"b"}`), 409, "group_feed_mismatch")
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?limit=0", nil), 400, "invalid_request")
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?partitions=x", nil), 400, "invalid_request")
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?partitions=16", nil), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `{"partition":1,"epoch":1,"position":"garbage"}`), 400, "invalid_position")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `{"partition":16,"epoch":1}`), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `{"partition":1}`), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `{"epoch":1}`), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `[{"partition":1,"epoch":1},{"partition":1,"epoch":1}]`), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `[]`), 400, "invalid_request")
	MustProblem(t, post("/v1/groups/g/members/a/ack", `{"partition":1,"epoch":1,"nope":true}`), 400, "invalid_json")

	// a stops heartbeating; b takes every partition once the lease lapses;
	// a's late ack and read are refused with the partitions named.
	deadline := time.Now().Add(10 * time.Second)
	var b membershipResp
	for len(b.Partitions) < 16 {
		if time.Now().After(deadline) {
			t.Fatalf("b holds %d partitions", len(b.Partitions))
		}
		time.Sleep(100 * time.Millisecond)
		_, b = ts.join(t, "g", `{"feed":"category/err","member":"b"}`)
	}
	late := fmt.Sprintf(`[{"partition":0,"epoch":%d,"position":""},{"partition":5,"epoch":%d}]`, a.Partitions[0].Epoch, a.Partitions[5].Epoch)
	p := MustProblem(t, post("/v1/groups/g/members/a/ack", late), 409, "lease_lost")
	if got, _ := json2ints(p["partitions"]); fmt.Sprint(got) != "[0 5]" {
		t.Fatalf("lease_lost names %v, want [0 5]", p["partitions"])
	}
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?partitions=0,1", nil), 409, "lease_lost")
	// b's ack under its own epoch goes through.
	ok := fmt.Sprintf(`{"partition":0,"epoch":%d,"position":""}`, b.Partitions[0].Epoch)
	if r := post("/v1/groups/g/members/b/ack", ok); r.Status != 200 {
		t.Fatalf("b's ack: %s", r)
	}
}

func json2ints(v any) ([]int, bool) {
	xs, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]int, len(xs))
	for i, x := range xs {
		f, _ := x.(float64)
		out[i] = int(f)
	}
	return out, true
}

// TestGroupsAPISecrets (shard-log path): a member's heartbeats, reads,
// acknowledgements and leave need the secret its first join answered (403
// invalid_member_secret without it, with a wrong one or another member's);
// DELETE /v1/groups/{group} removes the group, and positions of the old
// group are refused by the new one; the caps on groups and members answer
// 409 too_many_groups and too_many_members.
func TestGroupsAPISecrets(t *testing.T) {
	ts := mustGroupServer(t, func(o *shardstore.Options) { o.MaxGroups, o.MaxGroupMembers = 2, 2 })
	ts.MustAppend(t, "sec-1", 3)
	json := "application/json"

	r, a := ts.join(t, "g", `{"feed":"category/sec","member":"a"}`)
	if r.Status != 200 || len(a.Secret) < 40 {
		t.Fatalf("join: %s", r)
	}
	if r, again := ts.join(t, "g", `{"feed":"category/sec","member":"a"}`); r.Status != 200 || again.Secret != "" {
		t.Fatalf("heartbeat with the secret: %s", r)
	}
	_, b := ts.join(t, "g", `{"feed":"category/sec","member":"b"}`)
	// Wrong: a's secret with its first character changed (to one it is
	// not: a fixed "x" was a's own secret one run in 64).
	wrong := "x" + a.Secret[1:]
	if a.Secret[0] == 'x' {
		wrong = "y" + a.Secret[1:]
	}
	for name, secret := range map[string]string{"None": "", "Wrong": wrong, "OtherMember": b.Secret} {
		t.Run(name, func(t *testing.T) {
			h := []string{"Content-Type", json, "Eventlog-Member-Secret", secret}
			MustProblem(t, ts.Do(t, "POST", "/v1/groups/g/members", []byte(`{"feed":"category/sec","member":"a"}`), h...), 403, "invalid_member_secret")
			MustProblem(t, ts.Do(t, "GET", "/v1/groups/g/members/a/events", nil, h...), 403, "invalid_member_secret")
			MustProblem(t, ts.Do(t, "POST", "/v1/groups/g/members/a/ack", []byte(`{"partition":0,"epoch":1}`), h...), 403, "invalid_member_secret")
			MustProblem(t, ts.Do(t, "DELETE", "/v1/groups/g/members/a", nil, h...), 403, "invalid_member_secret")
		})
	}
	// With the secret: a reads (whatever shards it holds now).
	var p groupPageResp
	if r := ts.memberDo(t, "GET", "/v1/groups/g/members/a/events", nil); r.Status != 200 {
		t.Fatalf("read with the secret: %s", r)
	} else {
		mustDecode(t, r, &p)
	}

	// Caps: two live members (heartbeats first: leases are 1s), two groups.
	ts.join(t, "g", `{"feed":"category/sec","member":"a"}`)
	ts.join(t, "g", `{"feed":"category/sec","member":"b"}`)
	MustProblem(t, ts.Do(t, "POST", "/v1/groups/g/members", []byte(`{"feed":"category/sec","member":"c"}`), "Content-Type", json), 409, "too_many_members")
	if r, _ := ts.join(t, "g2", `{"feed":"all","member":"a"}`); r.Status != 200 {
		t.Fatalf("second group: %s", r)
	}
	MustProblem(t, ts.Do(t, "POST", "/v1/groups/g3/members", []byte(`{"feed":"all"}`), "Content-Type", json), 409, "too_many_groups")

	// Delete: gone, then a new group of the same name refuses the old
	// group's positions.
	if r := ts.Do(t, "DELETE", "/v1/groups/g", nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	MustProblem(t, ts.Do(t, "GET", "/v1/groups/g", nil), 404, "group_not_found")
	MustProblem(t, ts.Do(t, "DELETE", "/v1/groups/g", nil), 404, "group_not_found")
	delete(ts.secrets, "g/a")
	r, a2 := ts.join(t, "g", `{"feed":"category/sec","member":"a"}`)
	if r.Status != 200 || a2.Secret == "" || a2.Secret == a.Secret || len(a2.Partitions) == 0 {
		t.Fatalf("join after delete: %s", r)
	}
	if len(p.Partitions) > 0 {
		old := fmt.Sprintf(`{"partition":%d,"epoch":%d,"position":%q}`, p.Partitions[0].Partition, a2.Partitions[0].Epoch, p.Partitions[0].Next)
		for _, l := range a2.Partitions {
			if l.Partition == p.Partitions[0].Partition {
				old = fmt.Sprintf(`{"partition":%d,"epoch":%d,"position":%q}`, l.Partition, l.Epoch, p.Partitions[0].Next)
			}
		}
		MustProblem(t, ts.memberDo(t, "POST", "/v1/groups/g/members/a/ack", []byte(old), "Content-Type", json), 400, "invalid_position")
	}
	if g := ts.describe(t, "g"); g.Lag != 3 || len(g.Members) != 1 {
		t.Fatalf("new group: lag %d, %d members", g.Lag, len(g.Members))
	}

	// Evict: an operator removes a member without its secret (any request
	// may, as authentication is off; TestAuthMatrixShards checks the admin
	// scope); a bad value is refused and removes nothing.
	MustProblem(t, ts.Do(t, "DELETE", "/v1/groups/g/members/a?evict=yes", nil), 400, "invalid_request")
	if g := ts.describe(t, "g"); len(g.Members) != 1 {
		t.Fatalf("after a refused evict: %d members", len(g.Members))
	}
	if r := ts.Do(t, "DELETE", "/v1/groups/g/members/a?evict=true", nil); r.Status != http.StatusNoContent {
		t.Fatalf("evict: %s", r)
	}
	if g := ts.describe(t, "g"); len(g.Members) != 0 {
		t.Fatalf("after evict: members %+v", g.Members)
	}
	MustProblem(t, ts.memberDo(t, "GET", "/v1/groups/g/members/a/events", nil), 403, "invalid_member_secret")
}
