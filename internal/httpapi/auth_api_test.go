package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// authServer is a test server with authentication on.
type authServer struct {
	*testServer
	Keys *keystore.Store
	Auth *auth.Authenticator
}

// MustAuthServer starts the API with API keys required, over a fresh store
// with quick feeds; ao adjusts the authenticator's options.
func MustAuthServer(tb testing.TB, ao auth.Options, mod func(*httpapi.Config)) *authServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, opts := cassandratest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Registerer = reg
	})
	return startAuth(tb, store, opts, reg, ao, mod)
}

// AuthInstance is another instance on as's keyspace, with its own session,
// key store and authenticator.
func (as *authServer) AuthInstance(tb testing.TB, ao auth.Options) *authServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := as.Opts
	o.Cassandra.Registerer = reg
	return startAuth(tb, cassandratest.Reopen(tb, o), o, reg, ao, nil)
}

func startAuth(tb testing.TB, store *shardstore.Store, opts shardstore.Options, reg *prometheus.Registry, ao auth.Options, mod func(*httpapi.Config)) *authServer {
	tb.Helper()
	ks, err := keystore.New(cassandratest.Session(tb, opts.Cassandra), opts.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, ao)
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	ts := startServer(tb, store, opts, reg, nil, func(c *httpapi.Config) {
		c.Auth, c.Keys = a, ks
		if mod != nil {
			mod(c)
		}
	})
	return &authServer{testServer: ts, Keys: ks, Auth: a}
}

// MustToken stores a key with scopes (expired if ttl < 0) and returns its
// bearer header value; the authenticator knows it at once.
func (as *authServer) MustToken(tb testing.TB, name string, ttl time.Duration, scopes ...string) string {
	tb.Helper()
	k, tok, err := auth.NewKey(name, scopes, max(ttl, 0), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if ttl < 0 {
		k.Expires = k.Created.Add(ttl)
	}
	if err := as.Keys.CreateKey(context.Background(), k); err != nil {
		tb.Fatal(err)
	}
	if err := as.Auth.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return "Bearer " + tok
}

// As sends a request with the Authorization header value bearer ("" for
// none) and the other header pairs.
func (as *authServer) As(tb testing.TB, bearer, method, path, body string, header ...string) response {
	tb.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	if bearer != "" {
		header = append(header, "Authorization", bearer)
	}
	return as.Do(tb, method, path, b, header...)
}

const jsonCT = "application/json"

// TestAuthMatrix sends every route with each kind of bad credential and
// with keys lacking the action or the pattern, and checks the answer (401
// with a Bearer challenge, 403) and that nothing was written; then with
// the right scope, which is served.
func TestAuthMatrix(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	if r := as.As(t, root, "POST", "/v1/streams/acct-1/events", `{"events":[{"type":"Opened","data":{"n":1}}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("seed: %s", r)
	}

	revoked := as.MustToken(t, "revoked", 0, "admin")
	if err := as.Keys.RevokeKey(context.Background(), "revoked", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := as.Auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	unauth := []struct{ name, bearer string }{
		{"NoToken", ""},
		{"Malformed", "Bearer not a token!"},
		{"OtherScheme", "Basic cm9vdDpyb290"},
		{"Unknown", "Bearer evl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"Expired", as.MustToken(t, "expired", -time.Hour, "admin")},
		{"Revoked", revoked},
	}

	// written reports whether a denied request left a trace; nil for reads.
	streamExists := func(s string) func(t *testing.T) bool {
		return func(t *testing.T) bool {
			return as.As(t, root, "GET", "/v1/streams/"+s, "").Status != http.StatusNotFound
		}
	}
	groupExists := func(t *testing.T) bool {
		return as.As(t, root, "GET", "/v1/groups/g-1", "").Status != http.StatusNotFound
	}
	memberGone := func(t *testing.T) bool {
		r := as.As(t, root, "GET", "/v1/groups/g-1", "")
		return r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"member":"m-1"`)
	}
	keyExists := func(t *testing.T) bool {
		return strings.Contains(string(as.As(t, root, "GET", "/v1/admin/keys", "").Body), `"name":"made-by-test"`)
	}
	rootRevoked := func(t *testing.T) bool { return as.As(t, root, "GET", "/v1/admin/keys", "").Status != http.StatusOK }

	groupRead := []string{"group:g-*", "read:acct*"}
	for _, c := range []struct {
		name               string
		method, path, body string
		right, wrongAction []string
		wrongPattern       []string
		want               int
		written            func(t *testing.T) bool
		header             []string
	}{
		{"Append", "POST", "/v1/streams/acct-2/events", `{"events":[{"type":"Opened","data":{}}]}`,
			[]string{"append:acct-*"}, []string{"read:acct-*", "snapshot:*"}, []string{"append:user-*"}, http.StatusCreated, streamExists("acct-2"), []string{"Content-Type", jsonCT}},
		{"ReadEvents", "GET", "/v1/streams/acct-1/events", "",
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-2"}, http.StatusOK, nil, nil},
		{"ReadMissingStream", "GET", "/v1/streams/acct-9/events", "",
			[]string{"read:acct-*"}, []string{"append:*"}, []string{"read:user-*"}, http.StatusNotFound, nil, nil},
		{"Replay", "GET", "/v1/streams/acct-1/events", "",
			[]string{"read:acct-1"}, []string{"append:*"}, []string{"read:acct-2"}, http.StatusOK, nil, []string{"Accept", "application/x-ndjson"}},
		{"Info", "GET", "/v1/streams/acct-1", "",
			[]string{"read:acct-*"}, []string{"snapshot:*"}, []string{"read:acct-2*"}, http.StatusOK, nil, nil},
		{"State", "GET", "/v1/streams/acct-1/state", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:user"}, http.StatusOK, nil, nil},
		{"PutSnapshot", "PUT", "/v1/streams/acct-1/snapshots/1", `{"balance":1}`,
			[]string{"snapshot:acct-*"}, []string{"read:*", "append:*"}, []string{"snapshot:acct-2"}, http.StatusCreated,
			func(t *testing.T) bool {
				return as.As(t, root, "GET", "/v1/streams/acct-1/snapshots/latest", "").Status != http.StatusNotFound
			}, []string{"Content-Type", jsonCT}},
		{"LatestSnapshot", "GET", "/v1/streams/acct-1/snapshots/latest", "",
			[]string{"read:acct-1"}, []string{"snapshot:*"}, []string{"read:acct-10"}, http.StatusOK, nil, nil},
		{"FeedAll", "GET", "/v1/feeds/all", "",
			[]string{"read:*"}, []string{"append:*"}, []string{"read:acct*"}, http.StatusOK, nil, nil},
		{"FeedType", "GET", "/v1/feeds/type/Opened", "",
			[]string{"read:*"}, []string{"group:*"}, []string{"read:a*"}, http.StatusOK, nil, nil},
		{"FeedCategory", "GET", "/v1/feeds/category/acct", "",
			[]string{"read:acct*"}, []string{"append:*"}, []string{"read:acct-*"}, http.StatusOK, nil, nil},
		{"FeedCategoryBoth", "GET", "/v1/feeds/category/acct", "",
			[]string{"read:acct-*", "read:acct"}, []string{"append:*"}, []string{"read:acct-1"}, http.StatusOK, nil, nil},
		{"GroupJoin", "POST", "/v1/groups/g-1/members", `{"feed":"category/acct","member":"m-1"}`,
			groupRead, []string{"read:*", "append:*"}, []string{"group:h-*", "read:*"}, http.StatusOK, groupExists, []string{"Content-Type", jsonCT}},
		{"GroupJoinFeedScope", "POST", "/v1/groups/g-2/members", `{"feed":"all","member":"m-1"}`,
			[]string{"group:g-*", "read:*"}, []string{"read:*"}, groupRead, http.StatusOK,
			func(t *testing.T) bool {
				return as.As(t, root, "GET", "/v1/groups/g-2", "").Status != http.StatusNotFound
			}, []string{"Content-Type", jsonCT}},
		{"GroupDescribe", "GET", "/v1/groups/g-1", "",
			groupRead, []string{"read:*"}, []string{"group:g-1", "read:user*"}, http.StatusOK, nil, nil},
		{"GroupRead", "GET", "/v1/groups/g-1/members/m-1/events", "",
			groupRead, []string{"read:*"}, []string{"group:g-2", "read:*"}, http.StatusOK, nil, nil},
		{"GroupAck", "POST", "/v1/groups/g-1/members/m-1/ack", `[{"partition":0,"epoch":1,"position":""}]`,
			groupRead, []string{"read:*"}, []string{"group:g-1", "read:acct-*"}, 0, nil, []string{"Content-Type", jsonCT}},
		{"GroupLeave", "DELETE", "/v1/groups/g-1/members/m-1", "",
			groupRead, []string{"read:*", "append:*"}, []string{"group:x*", "read:*"}, http.StatusNoContent, memberGone, nil},
		{"Metrics", "GET", "/metrics", "",
			[]string{"admin"}, []string{"read:*", "append:*", "snapshot:*", "group:*"}, nil, http.StatusOK, nil, nil},
		{"CreateKey", "POST", "/v1/admin/keys", `{"name":"made-by-test","scopes":["admin"]}`,
			[]string{"admin"}, []string{"read:*", "append:*", "group:*"}, nil, http.StatusCreated, keyExists, []string{"Content-Type", jsonCT}},
		{"ListKeys", "GET", "/v1/admin/keys", "",
			[]string{"admin"}, []string{"read:*"}, nil, http.StatusOK, nil, nil},
		{"RevokeKey", "DELETE", "/v1/admin/keys/root", "",
			[]string{"admin"}, []string{"read:*", "snapshot:*"}, nil, http.StatusNoContent, rootRevoked, nil},
		{"UnknownRoute", "GET", "/v1/nothing", "",
			[]string{"read:*"}, nil, nil, http.StatusNotFound, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, u := range unauth {
				r := as.As(t, u.bearer, c.method, c.path, c.body, c.header...)
				MustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
				if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Fatalf("%s: WWW-Authenticate %q", u.name, ch)
				}
			}
			n := 0
			for kind, scopes := range map[string][]string{"WrongAction": c.wrongAction, "WrongPattern": c.wrongPattern} {
				if scopes == nil {
					continue
				}
				n++
				tok := as.MustToken(t, fmt.Sprintf("%s-%s", strings.ToLower(c.name), strings.ToLower(kind)), 0, scopes...)
				r := as.As(t, tok, c.method, c.path, c.body, c.header...)
				p := MustProblem(t, r, http.StatusForbidden, "forbidden")
				if strings.Contains(fmt.Sprint(p), "acct-1") || strings.Contains(fmt.Sprint(p), "g-1") {
					t.Fatalf("%s: the problem names the resource: %v", kind, p)
				}
			}
			if c.written != nil && c.written(t) {
				t.Fatal("a refused request wrote")
			}
			tok := as.MustToken(t, strings.ToLower(c.name)+"-right", 0, c.right...)
			r := as.As(t, tok, c.method, c.path, c.body, c.header...)
			switch {
			case c.want == 0: // a lease answer (200 or 409): served, not refused
				if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status >= 500 {
					t.Fatalf("right scope: %s", r)
				}
			case r.Status != c.want:
				t.Fatalf("right scope: %s, want %d", r, c.want)
			}
			if c.written != nil && !c.written(t) {
				t.Fatal("the allowed request left no trace: the check cannot fail")
			}
		})
	}

	t.Run("HealthWithoutToken", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := as.As(t, "", "GET", p, ""); r.Status != http.StatusOK {
				t.Fatalf("%s: %s", p, r)
			}
		}
	})
}

// TestAuthBulk: each line of a bulk append is checked on its own; refused
// lines are 403 in their result, the others written.
func TestAuthBulk(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	tok := as.MustToken(t, "writer", 0, "append:user-*")
	body := `{"stream":"user-1","events":[{"type":"t","data":1}]}` + "\n" +
		`{"stream":"order-1","events":[{"type":"t","data":1}]}` + "\n" +
		`{"stream":"user-2","events":[{"type":"t","data":1}]}` + "\n"
	r := as.As(t, tok, "POST", "/v1/events", body, "Content-Type", "application/x-ndjson")
	if r.Status != http.StatusOK {
		t.Fatalf("bulk: %s", r)
	}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || !strings.Contains(lines[0], `"status":201`) || !strings.Contains(lines[1], `"code":"forbidden"`) ||
		!strings.Contains(lines[1], `"status":403`) || !strings.Contains(lines[2], `"status":201`) {
		t.Fatalf("results:\n%s", r.Body)
	}
	if as.As(t, root, "GET", "/v1/streams/order-1", "").Status != http.StatusNotFound {
		t.Fatal("the refused line was written")
	}
	if as.As(t, root, "GET", "/v1/streams/user-2", "").Status != http.StatusOK {
		t.Fatal("the line after the refused one was not written")
	}
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("a 200 bulk answer carries a challenge")
	}
}

// TestAuthRevocationAcrossInstances: a key revoked through one instance is
// refused by another within the documented bound (10s), with the default
// refresh; and admin key management over HTTP never shows a token again.
func TestAuthRevocationAcrossInstances(t *testing.T) {
	a := MustAuthServer(t, auth.Options{}, nil)
	b := a.AuthInstance(t, auth.Options{})
	root := a.MustToken(t, "root", 0, "admin")

	r := a.As(t, root, "POST", "/v1/admin/keys", `{"name":"reader","scopes":["read:*"],"expires":"720h"}`, "Content-Type", jsonCT)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	created := r.JSON(t)
	tok, _ := created["token"].(string)
	if !strings.HasPrefix(tok, "evl_") || created["status"] != "active" || created["expires_at"] == nil {
		t.Fatalf("created: %s", r.Body)
	}
	MustProblem(t, a.As(t, root, "POST", "/v1/admin/keys", `{"name":"reader","scopes":["read:*"]}`, "Content-Type", jsonCT), http.StatusConflict, "key_exists")
	MustProblem(t, a.As(t, root, "POST", "/v1/admin/keys", `{"name":"bad","scopes":["write:*"]}`, "Content-Type", jsonCT), http.StatusBadRequest, "invalid_key")
	MustProblem(t, a.As(t, root, "DELETE", "/v1/admin/keys/nobody", ""), http.StatusNotFound, "key_not_found")

	// The other instance knows the new key at once (an unknown token makes
	// it read the keys, at most once a second).
	deadline := time.Now().Add(5 * time.Second)
	for b.As(t, "Bearer "+tok, "GET", "/v1/streams/x-1", "").Status != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("instance b does not accept a key created through a")
		}
		time.Sleep(100 * time.Millisecond)
	}
	list := a.As(t, root, "GET", "/v1/admin/keys", "")
	if list.Status != http.StatusOK || strings.Contains(string(list.Body), tok) || strings.Contains(string(list.Body), "token") ||
		strings.Contains(string(list.Body), "hash") || !strings.Contains(string(list.Body), `"name":"reader"`) {
		t.Fatalf("list: %s", list)
	}

	revokedAt := time.Now()
	if r := a.As(t, root, "DELETE", "/v1/admin/keys/reader", ""); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	MustProblem(t, a.As(t, "Bearer "+tok, "GET", "/v1/streams/x-1", ""), http.StatusUnauthorized, "unauthenticated") // at once here
	for {
		r := b.As(t, "Bearer "+tok, "GET", "/v1/streams/x-1", "")
		if r.Status == http.StatusUnauthorized {
			break
		}
		if time.Since(revokedAt) > 10*time.Second {
			t.Fatalf("instance b still accepts the revoked key after %v: %s", time.Since(revokedAt), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revocation reached the other instance after %v", time.Since(revokedAt).Round(time.Millisecond))
	if !strings.Contains(string(a.As(t, root, "GET", "/v1/admin/keys", "").Body), `"status":"revoked"`) {
		t.Fatal("the revoked key is not listed as revoked")
	}
}
