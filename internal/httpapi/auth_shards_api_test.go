package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/prometheus/client_golang/prometheus"
)

// shardAuth is an API instance on the shard-log path with API keys
// required.
type shardAuth struct {
	*testServer
	Keys *keystore.Store
	Auth *auth.Authenticator
	// PeerKey signs requests to the internal routes, as other instances do.
	PeerKey []byte
}

// signed is the Eventlog-Peer-Signature header of a POST of body to path,
// as an instance of sa's keyspace sends it.
func (sa *shardAuth) signed(path, body string) []string {
	return []string{"Eventlog-Peer-Signature", httpapi.PeerSignature(sa.PeerKey, "POST", path, []byte(body), time.Now())}
}

// mustShardAuth starts the API over a fresh shard-path keyspace (16
// shards, one-minute group leases so members outlive a long test) with
// keys required; mod adjusts the HTTP config.
func mustShardAuth(tb testing.TB, mod func(*httpapi.Config)) *shardAuth {
	tb.Helper()
	o := cassandratest.Options(tb)
	o.Limits, o.Shards = testLimits, 16
	o.GroupLeaseTTL, o.GroupLeaseGrace = time.Minute, 100*time.Millisecond
	if _, err := cassandratest.Migrate(tb, o); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cassandratest.DropBounded(tb, o) })
	return startShardAuth(tb, o, auth.Options{}, mod)
}

// instance starts another instance on sa's keyspace: its own store,
// session, key store, authenticator (default options: the documented
// revocation delay) and API.
func (sa *shardAuth) instance(tb testing.TB) *shardAuth {
	tb.Helper()
	return startShardAuth(tb, sa.Opts.Cassandra, auth.Options{}, nil)
}

func startShardAuth(tb testing.TB, o cassandra.Options, ao auth.Options, mod func(*httpapi.Config)) *shardAuth {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	ks, err := keystore.New(cassandratest.Session(tb, o), o.SerialConsistency, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, ao)
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	cfg := httpapi.Config{Limits: testLimits, Registry: reg, Auth: a, Keys: ks, MaxBulkLines: 20}
	if mod != nil {
		mod(&cfg)
	}
	api, err := httpapi.New(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Opts: shardstore.Options{Cassandra: o}, API: api}
	ts.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return &shardAuth{testServer: ts, Keys: ks, Auth: a, PeerKey: store.PeerKey()}
}

// token stores a key with scopes (expired if ttl < 0) and returns its
// Authorization value; this instance knows it at once.
func (sa *shardAuth) token(tb testing.TB, name string, ttl time.Duration, scopes ...string) string {
	tb.Helper()
	k, tok, err := auth.NewKey(name, scopes, max(ttl, 0), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if ttl < 0 {
		k.Expires = k.Created.Add(ttl)
	}
	if err := sa.Keys.CreateKey(context.Background(), k); err != nil {
		tb.Fatal(err)
	}
	if err := sa.Auth.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return "Bearer " + tok
}

// as sends a request with the Authorization value bearer ("" for none),
// bounded to 20 s so a refusal that is not one (a live subscription
// served) fails instead of hanging.
func (sa *shardAuth) as(tb testing.TB, bearer, method, path, body string, header ...string) response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, sa.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	res, err := sa.Client().Do(req)
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

// TestAuthMatrixShards (shard-log path): every route — streams, snapshots,
// state, subscriptions, feeds and their subscriptions, bulk, every
// consumer-group route, the internal forwarding routes, admin keys,
// /metrics and /openapi.json — with no token, a malformed one, another
// scheme, an unknown, expired and revoked token, then with a key lacking
// the action and one lacking the pattern: 401 with a Bearer challenge, or
// 403 that names nothing; each refused write is checked to have written
// nothing (read back with an admin key); then the right scope is served.
func TestAuthMatrixShards(t *testing.T) {
	sa := mustShardAuth(t, nil)
	root := sa.token(t, "root", 0, "admin")
	ct := []string{"Content-Type", jsonCT}
	if r := sa.as(t, root, "POST", "/v1/streams/acct-1/events", `{"events":[{"type":"Opened","data":{"n":1}}]}`, ct...); r.Status != http.StatusCreated {
		t.Fatalf("seed: %s", r)
	}
	// A group with one member, whose secret goes with every member request
	// below (the scope check comes first: the secret does not help a key
	// without the scope), and a read whose positions the ack cases send.
	join := func(group, member, feed string) string {
		r := sa.as(t, root, "POST", "/v1/groups/"+group+"/members", fmt.Sprintf(`{"feed":%q,"member":%q}`, feed, member), ct...)
		var m membershipResp
		if r.Status != http.StatusOK {
			t.Fatalf("join %s: %s", group, r)
		}
		mustDecode(t, r, &m)
		return m.Secret
	}
	secret := join("g-1", "m-1", "category/acct")
	join("g-del", "m-1", "category/acct")
	join("g-ev", "m-1", "category/acct")
	member := []string{"Eventlog-Member-Secret", secret}
	var gp groupPageResp
	if r := sa.as(t, root, "GET", "/v1/groups/g-1/members/m-1/events", "", member...); r.Status != http.StatusOK {
		t.Fatalf("group read: %s", r)
	} else {
		mustDecode(t, r, &gp)
	}
	var acks []string
	for _, p := range gp.Partitions {
		acks = append(acks, fmt.Sprintf(`{"partition":%d,"epoch":%d,"position":%q}`, p.Partition, p.Epoch, p.Next))
	}
	if len(gp.Events) != 1 || len(acks) == 0 {
		t.Fatalf("group read: %d events, %d partitions", len(gp.Events), len(acks))
	}
	ackBody := "[" + strings.Join(acks, ",") + "]"

	revoked := sa.token(t, "revoked", 0, "admin")
	if err := sa.Keys.RevokeKey(context.Background(), "revoked", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := sa.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	unauth := []struct{ name, bearer string }{
		{"NoToken", ""},
		{"Malformed", "Bearer not a token!"},
		{"OtherScheme", "Basic cm9vdDpyb290"},
		{"Empty", "Bearer "},
		{"Unknown", "Bearer evl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"Expired", sa.token(t, "expired", -time.Hour, "admin")},
		{"Revoked", revoked},
	}

	// Read-backs with the admin key: whether a refused request left a
	// trace.
	streamExists := func(s string) func(t *testing.T) bool {
		return func(t *testing.T) bool {
			return sa.as(t, root, "GET", "/v1/streams/"+s, "").Status != http.StatusNotFound
		}
	}
	groupExists := func(g string) func(t *testing.T) bool {
		return func(t *testing.T) bool {
			return sa.as(t, root, "GET", "/v1/groups/"+g, "").Status != http.StatusNotFound
		}
	}
	groupGone := func(t *testing.T) bool { return !groupExists("g-del")(t) }
	checkpoints := func(t *testing.T) string {
		r := sa.as(t, root, "GET", "/v1/groups/g-1", "")
		var g struct {
			Partitions []struct{ Checkpoint string } `json:"partitions"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &g) != nil {
			t.Fatalf("describe: %s", r)
		}
		return fmt.Sprint(g.Partitions)
	}
	unacked := checkpoints(t)
	acked := func(t *testing.T) bool { return checkpoints(t) != unacked }
	memberGone := func(t *testing.T) bool {
		r := sa.as(t, root, "GET", "/v1/groups/g-1", "")
		return r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"member":"m-1"`)
	}
	evicted := func(t *testing.T) bool {
		r := sa.as(t, root, "GET", "/v1/groups/g-ev", "")
		return r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"member":"m-1"`)
	}
	keyExists := func(t *testing.T) bool {
		return strings.Contains(string(sa.as(t, root, "GET", "/v1/admin/keys", "").Body), `"name":"made-by-test"`)
	}
	victimTok := sa.token(t, "victim", 0, "read:*")
	victimRevoked := func(t *testing.T) bool {
		return sa.as(t, victimTok, "GET", "/v1/streams/acct-1", "").Status == http.StatusUnauthorized
	}
	snapshotExists := func(t *testing.T) bool {
		return sa.as(t, root, "GET", "/v1/streams/acct-1/snapshots/latest", "").Status != http.StatusNotFound
	}
	sse := []string{"Accept", "text/event-stream"}
	groupRead := []string{"group:g-*", "read:acct*"}

	for _, c := range []struct {
		name               string
		method, path, body string
		right, wrongAction []string
		wrongPattern       []string
		want               int
		written            func(t *testing.T) bool
		header             []string
		stream             bool // a live subscription: the right request is checked by its status only
	}{
		{"Append", "POST", "/v1/streams/acct-2/events", `{"events":[{"type":"Opened","data":{}}]}`,
			[]string{"append:acct-*"}, []string{"read:acct-*", "snapshot:*", "group:*"}, []string{"append:user-*"}, http.StatusCreated, streamExists("acct-2"), ct, false},
		{"ReadEvents", "GET", "/v1/streams/acct-1/events", "",
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-2"}, http.StatusOK, nil, nil, false},
		{"ReadMissingStream", "GET", "/v1/streams/acct-9/events", "",
			[]string{"read:acct-*"}, []string{"append:*"}, []string{"read:user-*"}, http.StatusNotFound, nil, nil, false},
		{"Replay", "GET", "/v1/streams/acct-1/events", "",
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-2"}, http.StatusOK, nil, []string{"Accept", "application/x-ndjson"}, false},
		{"Info", "GET", "/v1/streams/acct-1", "",
			[]string{"read:acct-*"}, []string{"snapshot:*"}, []string{"read:acct-2*"}, http.StatusOK, nil, nil, false},
		{"InfoMissing", "GET", "/v1/streams/acct-9", "",
			[]string{"read:acct-*"}, []string{"snapshot:*"}, []string{"read:acct-1"}, http.StatusNotFound, nil, nil, false},
		{"State", "GET", "/v1/streams/acct-1/state", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:user"}, http.StatusOK, nil, nil, false},
		{"StateAtTime", "GET", "/v1/streams/acct-1/state?at_time=2100-01-01T00:00:00Z", "",
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-10"}, http.StatusOK, nil, nil, false},
		{"PutSnapshot", "PUT", "/v1/streams/acct-1/snapshots/1", `{"balance":1}`,
			[]string{"snapshot:acct-*"}, []string{"read:*", "append:*"}, []string{"snapshot:acct-2"}, http.StatusCreated, snapshotExists, ct, false},
		{"LatestSnapshot", "GET", "/v1/streams/acct-1/snapshots/latest", "",
			[]string{"read:acct-1"}, []string{"snapshot:*"}, []string{"read:acct-10"}, http.StatusOK, nil, nil, false},
		{"Subscribe", "GET", "/v1/streams/acct-1/subscribe", "",
			[]string{"read:acct-1"}, []string{"append:*", "group:*"}, []string{"read:acct-2"}, http.StatusOK, nil, sse, true},
		{"FeedAll", "GET", "/v1/feeds/all", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:acct*"}, http.StatusOK, nil, nil, false},
		{"FeedAllNDJSON", "GET", "/v1/feeds/all", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:a*"}, http.StatusOK, nil, []string{"Accept", "application/x-ndjson"}, false},
		{"FeedType", "GET", "/v1/feeds/type/Opened", "",
			[]string{"read:*"}, []string{"group:*"}, []string{"read:a*"}, http.StatusOK, nil, nil, false},
		{"FeedCategory", "GET", "/v1/feeds/category/acct", "",
			[]string{"read:acct*"}, []string{"append:*"}, []string{"read:acct-*"}, http.StatusOK, nil, nil, false},
		{"FeedCategoryBoth", "GET", "/v1/feeds/category/acct", "",
			[]string{"read:acct-*", "read:acct"}, []string{"append:*"}, []string{"read:acct-1"}, http.StatusOK, nil, nil, false},
		{"FeedAllSubscribe", "GET", "/v1/feeds/all/subscribe", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:acct*"}, http.StatusOK, nil, sse, true},
		{"FeedCategorySubscribe", "GET", "/v1/feeds/category/acct/subscribe", "",
			[]string{"read:acct*"}, []string{"snapshot:*"}, []string{"read:acct-*"}, http.StatusOK, nil, sse, true},
		{"FeedTypeSubscribe", "GET", "/v1/feeds/type/Opened/subscribe", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:acct*"}, http.StatusOK, nil, sse, true},
		{"GroupJoin", "POST", "/v1/groups/g-2/members", `{"feed":"category/acct","member":"m-1"}`,
			groupRead, []string{"read:*", "append:*"}, []string{"group:h-*", "read:*"}, http.StatusOK, groupExists("g-2"), ct, false},
		{"GroupJoinFeedScope", "POST", "/v1/groups/g-3/members", `{"feed":"all","member":"m-1"}`,
			[]string{"group:g-*", "read:*"}, []string{"read:*"}, groupRead, http.StatusOK, groupExists("g-3"), ct, false},
		{"GroupHeartbeat", "POST", "/v1/groups/g-1/members", `{"feed":"category/acct","member":"m-1"}`,
			groupRead, []string{"read:*"}, []string{"group:g-2", "read:*"}, http.StatusOK, nil, append(ct, member...), false},
		{"GroupDescribe", "GET", "/v1/groups/g-1", "",
			groupRead, []string{"read:*"}, []string{"group:g-2", "read:*"}, http.StatusOK, nil, nil, false},
		{"GroupRead", "GET", "/v1/groups/g-1/members/m-1/events", "",
			groupRead, []string{"read:*"}, []string{"group:g-2", "read:*"}, http.StatusOK, nil, member, false},
		{"GroupAck", "POST", "/v1/groups/g-1/members/m-1/ack", ackBody,
			groupRead, []string{"read:*"}, []string{"group:g-2", "read:acct*"}, http.StatusOK, acked, append(ct, member...), false},
		{"GroupLeave", "DELETE", "/v1/groups/g-1/members/m-1", "",
			groupRead, []string{"read:*", "append:*"}, []string{"group:x*", "read:*"}, http.StatusNoContent, memberGone, member, false},
		{"GroupEvict", "DELETE", "/v1/groups/g-ev/members/m-1?evict=true", "",
			[]string{"admin"}, []string{"group:*", "read:*"}, nil, http.StatusNoContent, evicted, nil, false},
		{"GroupDelete", "DELETE", "/v1/groups/g-del", "",
			[]string{"group:g-del", "read:acct*"}, []string{"read:*", "append:*"}, []string{"group:g-1", "read:*"}, http.StatusNoContent, groupGone, nil, false},
		{"InternalFlush", "POST", "/internal/v1/flush", `{"stream":"acct-1"}`,
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-2"}, http.StatusNoContent, nil,
			append(sa.signed("/internal/v1/flush", `{"stream":"acct-1"}`), ct...), false},
		{"Metrics", "GET", "/metrics", "",
			[]string{"admin"}, []string{"read:*", "append:*", "snapshot:*", "group:*"}, nil, http.StatusOK, nil, nil, false},
		{"OpenAPI", "GET", "/openapi.json", "",
			[]string{"read:nothing"}, nil, nil, http.StatusOK, nil, nil, false},
		{"CreateKey", "POST", "/v1/admin/keys", `{"name":"made-by-test","scopes":["admin"]}`,
			[]string{"admin"}, []string{"read:*", "append:*", "group:*"}, nil, http.StatusCreated, keyExists, ct, false},
		{"ListKeys", "GET", "/v1/admin/keys", "",
			[]string{"admin"}, []string{"read:*"}, nil, http.StatusOK, nil, nil, false},
		{"RevokeKey", "DELETE", "/v1/admin/keys/victim", "",
			[]string{"admin"}, []string{"read:*", "snapshot:*"}, nil, http.StatusNoContent, victimRevoked, nil, false},
		{"UnknownRoute", "GET", "/v1/nothing", "",
			[]string{"read:*"}, nil, nil, http.StatusNotFound, nil, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, u := range unauth {
				r := sa.as(t, u.bearer, c.method, c.path, c.body, c.header...)
				MustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
				if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Fatalf("%s: WWW-Authenticate %q", u.name, ch)
				}
			}
			for kind, scopes := range map[string][]string{"WrongAction": c.wrongAction, "WrongPattern": c.wrongPattern} {
				if scopes == nil {
					continue
				}
				tok := sa.token(t, fmt.Sprintf("%s-%s", strings.ToLower(c.name), strings.ToLower(kind)), 0, scopes...)
				r := sa.as(t, tok, c.method, c.path, c.body, c.header...)
				p := MustProblem(t, r, http.StatusForbidden, "forbidden")
				if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, "insufficient_scope") {
					t.Fatalf("%s: WWW-Authenticate %q", kind, ch)
				}
				for _, name := range []string{"acct", "g-1", "g-del", "victim"} {
					if strings.Contains(fmt.Sprint(p), name) {
						t.Fatalf("%s: the problem names %s: %v", kind, name, p)
					}
				}
			}
			if c.written != nil && c.written(t) {
				t.Fatal("a refused request wrote")
			}
			tok := sa.token(t, strings.ToLower(c.name)+"-right", 0, c.right...)
			if c.stream {
				status, _, cancel := openSubscription(t, sa.URL+c.path, append([]string{"Authorization", tok}, c.header...)...)
				cancel()
				if status != c.want {
					t.Fatalf("right scope: %d, want %d", status, c.want)
				}
				return
			}
			if r := sa.as(t, tok, c.method, c.path, c.body, c.header...); r.Status != c.want {
				t.Fatalf("right scope: %s, want %d", r, c.want)
			}
			if c.written != nil && !c.written(t) {
				t.Fatal("the allowed request left no trace: the check cannot fail")
			}
		})
	}

	t.Run("Bulk", func(t *testing.T) {
		body := `{"stream":"user-1","events":[{"type":"t","data":1}]}` + "\n" +
			`{"stream":"order-1","events":[{"type":"t","data":1}]}` + "\n" +
			`{"stream":"user-2","events":[{"type":"t","data":1}]}` + "\n"
		nd := []string{"Content-Type", "application/x-ndjson"}
		for _, u := range unauth {
			MustProblem(t, sa.as(t, u.bearer, "POST", "/v1/events", body, nd...), http.StatusUnauthorized, "unauthenticated")
		}
		lines := func(r response) []map[string]any {
			t.Helper()
			if r.Status != http.StatusOK {
				t.Fatalf("bulk: %s", r)
			}
			var out []map[string]any
			sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("result line %q: %v", sc.Text(), err)
				}
				out = append(out, m)
			}
			return out
		}
		// No append scope at all: every line refused, nothing written.
		for _, scopes := range [][]string{{"read:*", "snapshot:*"}, {"append:item-*"}} {
			tok := sa.token(t, "bulk-"+strings.ReplaceAll(strings.ReplaceAll(scopes[0], ":", "-"), "*", "x"), 0, scopes...)
			for i, l := range lines(sa.as(t, tok, "POST", "/v1/events", body, nd...)) {
				if l["status"] != float64(403) || l["code"] != "forbidden" || l["line"] != float64(i+1) {
					t.Fatalf("%v: line %d: %v", scopes, i+1, l)
				}
			}
		}
		for _, s := range []string{"user-1", "order-1", "user-2"} {
			if streamExists(s)(t) {
				t.Fatalf("a refused bulk line wrote %s", s)
			}
		}
		// Some lines allowed: those are written, the refused one is 403 in
		// its result line.
		tok := sa.token(t, "bulk-writer", 0, "append:user-*")
		res := lines(sa.as(t, tok, "POST", "/v1/events", body, nd...))
		if len(res) != 3 || res[0]["status"] != float64(201) || res[1]["status"] != float64(403) || res[1]["code"] != "forbidden" ||
			res[2]["status"] != float64(201) {
			t.Fatalf("results %v", res)
		}
		if streamExists("order-1")(t) || !streamExists("user-1")(t) || !streamExists("user-2")(t) {
			t.Fatal("the refused line was written, or an allowed one was not")
		}
	})

	// The internal routes serve instances only: a request without an
	// instance's signature is 403 whatever key it carries, and does
	// nothing.
	t.Run("InternalUnsigned", func(t *testing.T) {
		admin := sa.token(t, "internal-admin", 0, "admin")
		body := fmt.Sprintf(`{"appends":[{"authorization":%q,"stream":"acct-5","expected_version":"any","events":[{"id":%q,"client_id":true,"type":"Opened","data":{}}]}]}`,
			admin, uuid.NewString())
		bad := map[string][]string{
			"None":      nil,
			"OtherBody": sa.signed("/internal/v1/appends", body+" "),
			"OtherPath": sa.signed("/internal/v1/flush", body),
			"Garbage":   {"Eventlog-Peer-Signature", "t=1,s=AAAA"},
		}
		for name, sig := range bad {
			p := MustProblem(t, sa.as(t, admin, "POST", "/internal/v1/appends", body, append(sig, ct...)...), http.StatusForbidden, "forbidden")
			if !strings.Contains(fmt.Sprint(p), "Eventlog-Peer-Signature") {
				t.Fatalf("%s: %v", name, p)
			}
			MustProblem(t, sa.as(t, admin, "POST", "/internal/v1/flush", `{"stream":"acct-1"}`, append(sig, ct...)...), http.StatusForbidden, "forbidden")
		}
		if streamExists("acct-5")(t) {
			t.Fatal("an unsigned forward wrote")
		}
	})

	// Forwarded appends (POST /internal/v1/appends) carry each client's
	// Authorization in the body: signed by an instance, the request needs
	// no key of its own, and each append is authorised with its own,
	// refused alone (nothing written).
	t.Run("InternalAppends", func(t *testing.T) {
		forwarded := func(authorization, stream string) string {
			return fmt.Sprintf(`{"appends":[{"authorization":%q,"stream":%q,"expected_version":"any","events":[{"id":%q,"client_id":true,"type":"Opened","data":{}}]}]}`,
				authorization, stream, uuid.NewString())
		}
		send := func(body string) response {
			return sa.as(t, "", "POST", "/internal/v1/appends", body, append(sa.signed("/internal/v1/appends", body), ct...)...)
		}
		right := sa.token(t, "internal-right", 0, "append:acct-3")
		inner := map[string]string{"forbidden": sa.token(t, "internal-wrong-action", 0, "read:*")}
		inner["forbidden "] = sa.token(t, "internal-wrong-pattern", 0, "append:acct-4")
		for _, u := range unauth {
			inner["unauthenticated"+strings.Repeat(" ", len(inner))] = u.bearer
		}
		for code, bearer := range inner {
			r := send(forwarded(bearer, "acct-3"))
			if r.Status != http.StatusOK {
				t.Fatalf("forwarded batch: %s", r)
			}
			var a struct {
				Results []struct {
					Result  map[string]any `json:"result"`
					Problem map[string]any `json:"problem"`
				} `json:"results"`
			}
			if err := json.Unmarshal(r.Body, &a); err != nil || len(a.Results) != 1 || a.Results[0].Result != nil ||
				a.Results[0].Problem["code"] != strings.TrimSpace(code) {
				t.Fatalf("forwarded append with %q: %s, want %s", bearer, r.Body, strings.TrimSpace(code))
			}
		}
		if streamExists("acct-3")(t) {
			t.Fatal("a refused forwarded append wrote")
		}
		r := send(forwarded(right, "acct-3"))
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"first_version":1`) || !streamExists("acct-3")(t) {
			t.Fatalf("forwarded append with the right key: %s", r)
		}
	})

	t.Run("HealthWithoutToken", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := sa.as(t, "", "GET", p, ""); r.Status != http.StatusOK {
				t.Fatalf("%s: %s", p, r)
			}
		}
	})
}

// TestAuthRevocationShards (shard-log path): a key created through one
// instance works through another at once; revoked through the first, it
// is refused there at once and by the other within the documented 10 s
// (default refresh); its token is never shown again.
func TestAuthRevocationShards(t *testing.T) {
	a := mustShardAuth(t, nil)
	b := a.instance(t)
	root := a.token(t, "root", 0, "admin")
	ct := []string{"Content-Type", jsonCT}

	r := a.as(t, root, "POST", "/v1/admin/keys", `{"name":"reader","scopes":["read:*"],"expires":"720h"}`, ct...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	tok, _ := r.JSON(t)["token"].(string)
	if !strings.HasPrefix(tok, "evl_") {
		t.Fatalf("created: %s", r.Body)
	}
	MustProblem(t, a.as(t, root, "POST", "/v1/admin/keys", `{"name":"reader","scopes":["read:*"]}`, ct...), http.StatusConflict, "key_exists")
	MustProblem(t, a.as(t, root, "DELETE", "/v1/admin/keys/nobody", ""), http.StatusNotFound, "key_not_found")
	// A feed read: served by any instance, whichever owns which shard.
	const probe = "/v1/feeds/all?limit=1"
	for deadline := time.Now().Add(5 * time.Second); b.as(t, "Bearer "+tok, "GET", probe, "").Status != http.StatusOK; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("instance b does not accept a key created through a")
		}
	}
	if list := b.as(t, root, "GET", "/v1/admin/keys", ""); list.Status != http.StatusOK || strings.Contains(string(list.Body), tok) ||
		strings.Contains(string(list.Body), "token") || strings.Contains(string(list.Body), "hash") {
		t.Fatalf("list through b: %s", list)
	}

	revokedAt := time.Now()
	if r := a.as(t, root, "DELETE", "/v1/admin/keys/reader", ""); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	MustProblem(t, a.as(t, "Bearer "+tok, "GET", probe, ""), http.StatusUnauthorized, "unauthenticated")
	for {
		r := b.as(t, "Bearer "+tok, "GET", probe, "")
		if r.Status == http.StatusUnauthorized {
			MustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
			break
		}
		if time.Since(revokedAt) > 10*time.Second {
			t.Fatalf("instance b still accepts the revoked key after %v: %s", time.Since(revokedAt), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revocation reached the other instance after %v", time.Since(revokedAt).Round(time.Millisecond))
}

// logSink is a bytes.Buffer safe for the server's concurrent logging.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditRecords (shard-log path): creating and revoking a key and
// deleting a group are logged as audit records naming the action, the key
// or group and who did it; no log line ever holds a token, not even of a
// refused request.
func TestAuditRecords(t *testing.T) {
	var logs logSink
	sa := mustShardAuth(t, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.AccessLog = "all"
	})
	root := sa.token(t, "root", 0, "admin")
	ct := []string{"Content-Type", jsonCT}
	r := sa.as(t, root, "POST", "/v1/admin/keys", `{"name":"audited","scopes":["read:*","group:g-*"]}`, ct...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	tok, _ := r.JSON(t)["token"].(string)
	if r := sa.as(t, "Bearer "+tok, "POST", "/v1/groups/g-a/members", `{"feed":"all","member":"m"}`, ct...); r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	if r := sa.as(t, "Bearer "+tok, "DELETE", "/v1/groups/g-a", ""); r.Status != http.StatusNoContent {
		t.Fatalf("delete group: %s", r)
	}
	sa.as(t, "Bearer "+tok, "POST", "/v1/admin/keys", `{"name":"x","scopes":["admin"]}`, ct...) // refused: 403
	if r := sa.as(t, root, "DELETE", "/v1/admin/keys/audited", ""); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	sa.as(t, "Bearer "+tok, "GET", "/v1/streams/x-1", "") // refused: 401

	out := logs.String()
	if strings.Contains(out, tok) || strings.Contains(out, tok[4:]) || strings.Contains(out, strings.TrimPrefix(root, "Bearer ")) ||
		strings.Contains(out, "evl_") {
		t.Fatalf("a token is in the logs:\n%s", out)
	}
	want := map[string]string{"key_created": "audited", "group_deleted": "g-a", "key_revoked": "audited"}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "audit" {
			continue
		}
		action, _ := rec["action"].(string)
		name, _ := rec["key"].(string)
		if action == "group_deleted" {
			name, _ = rec["group"].(string)
		}
		by, _ := rec["by"].(string)
		if want[action] == name && strings.HasPrefix(by, "key:") && rec["request_id"] != nil {
			delete(want, action)
		}
	}
	if len(want) > 0 {
		t.Fatalf("audit records missing %v in:\n%s", want, out)
	}
}
