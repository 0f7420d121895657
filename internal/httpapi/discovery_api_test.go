package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// mustShardAuthServer is the API with keys required over a shard-log
// store with 4 shards.
func mustShardAuthServer(tb testing.TB) *authServer {
	tb.Helper()
	return mustShardAuthServerWith(tb, nil)
}

// mustShardAuthServerWith is mustShardAuthServer with the store's options
// changed by mod (nil: none).
func mustShardAuthServerWith(tb testing.TB, mod func(*shardstore.Options)) *authServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	o := cassandratest.Options(tb)
	o.Limits, o.Registerer, o.Shards = testLimits, reg, 4
	if _, err := cassandratest.Migrate(tb, o); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cassandratest.DropBounded(tb, o) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	so := shardstore.Options{Cassandra: o, LeaseTTL: time.Second, Version: "test-version"}
	if mod != nil {
		mod(&so)
	}
	store, err := shardstore.Open(ctx, so)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	ks, err := keystore.New(cassandratest.Session(tb, o), o.SerialConsistency, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{})
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits, Registry: reg, Auth: a, Keys: ks})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Store: store, Opts: so, API: api}
	ts.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return &authServer{testServer: ts, Keys: ks, Auth: a}
}

type listedStream struct {
	Stream    string `json:"stream"`
	Category  string `json:"category"`
	Version   int64  `json:"version"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type streamListJSON struct {
	Streams []listedStream `json:"streams"`
	Next    *string        `json:"next"`
}

// listAll pages through GET /v1/streams with query q (and limit) and
// returns the stream ids in order.
func listAll(tb testing.TB, as *authServer, bearer, q string, limit int) []string {
	tb.Helper()
	var (
		out   []string
		after string
	)
	for range 100 {
		path := "/v1/streams?limit=" + strconv.Itoa(limit) + q
		if after != "" {
			path += "&after=" + after
		}
		r := as.As(tb, bearer, "GET", path, "")
		if r.Status != http.StatusOK {
			tb.Fatalf("GET %s: %s", path, r)
		}
		p := mustStrictJSON[streamListJSON](tb, "stream list", r)
		if len(p.Streams) > limit {
			tb.Fatalf("page of %d streams, limit %d", len(p.Streams), limit)
		}
		for _, s := range p.Streams {
			out = append(out, s.Stream)
		}
		if p.Next == nil {
			return out
		}
		after = *p.Next
	}
	tb.Fatal("listing does not end")
	return nil
}

// TestDiscovery lists streams and categories, finds events by id and
// describes the cluster on the shard-log path, with the scopes of the
// caller applied.
func TestDiscovery(t *testing.T) {
	as := mustShardAuthServer(t)
	admin := as.MustToken(t, "admin", 0, "admin")
	v7 := uuid.Must(uuid.NewV7())
	v4 := uuid.New()
	for _, a := range []struct{ stream, body string }{
		{"user-1", `{"events":[{"id":"` + v7.String() + `","type":"UserCreated","data":{"name":"Ada"},"metadata":{"m":1}},{"type":"UserRenamed","data":{"name":"Ada L."}}]}`},
		{"user-2", `{"events":[{"type":"UserCreated","data":{}}]}`},
		{"user-10", `{"events":[{"type":"UserCreated","data":{}}]}`},
		{"user", `{"events":[{"type":"Singleton","data":{}}]}`},
		{"order-1", `{"events":[{"id":"` + v4.String() + `","type":"OrderPlaced","data":{"n":7}}]}`},
	} {
		if r := as.As(t, admin, "POST", "/v1/streams/"+a.stream+"/events", a.body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append %s: %s", a.stream, r)
		}
	}
	// A second append to user-2 moves its head, not its catalog row.
	if r := as.As(t, admin, "POST", "/v1/streams/user-2/events", `{"events":[{"type":"X","data":1}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	want := []string{"order-1", "user", "user-1", "user-10", "user-2"}
	// The catalog is written behind the commit: wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(listAll(t, as, admin, "", 100), want) {
		if time.Now().After(deadline) {
			t.Fatalf("listing %v, want %v", listAll(t, as, admin, "", 100), want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("Pages", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3} {
			if got := listAll(t, as, admin, "", limit); !slices.Equal(got, want) {
				t.Fatalf("limit %d: %v, want %v", limit, got, want)
			}
		}
		r := as.As(t, admin, "GET", "/v1/streams?prefix=user-2", "")
		p := mustStrictJSON[streamListJSON](t, "stream list", r)
		if len(p.Streams) != 1 || p.Next != nil {
			t.Fatalf("prefix user-2: %s", r)
		}
		s := p.Streams[0]
		if s.Stream != "user-2" || s.Category != "user" || s.Version != 2 || s.UpdatedAt < s.CreatedAt || s.CreatedAt == "" {
			t.Fatalf("user-2: %+v", s)
		}
	})
	t.Run("Filters", func(t *testing.T) {
		for q, w := range map[string][]string{
			"&prefix=user-1":            {"user-1", "user-10"},
			"&prefix=us":                {"user", "user-1", "user-10", "user-2"},
			"&category=user":            {"user", "user-1", "user-10", "user-2"},
			"&category=order":           {"order-1"},
			"&category=user&prefix=use": {"user", "user-1", "user-10", "user-2"},
			"&category=order&prefix=u":  nil,
			"&prefix=x":                 nil,
		} {
			if got := listAll(t, as, admin, q, 2); !slices.Equal(got, w) {
				t.Errorf("%s: %v, want %v", q, got, w)
			}
		}
	})
	t.Run("After", func(t *testing.T) {
		r := as.As(t, admin, "GET", "/v1/streams?after=user", "")
		p := mustStrictJSON[streamListJSON](t, "stream list", r)
		if len(p.Streams) != 3 || p.Streams[0].Stream != "user-1" || p.Next != nil {
			t.Fatalf("after user: %s", r)
		}
	})
	t.Run("BadParams", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "category=a-b", "prefix=bad%20id", "after=-x", "limit=1&limit=2"} {
			MustProblem(t, as.As(t, admin, "GET", "/v1/streams?"+q, ""), http.StatusBadRequest, "invalid_request")
		}
	})
	t.Run("Categories", func(t *testing.T) {
		r := as.As(t, admin, "GET", "/v1/categories", "")
		type categories struct {
			Categories []struct {
				Category string `json:"category"`
				Streams  int64  `json:"streams"`
				Exact    bool   `json:"exact"`
			} `json:"categories"`
			Next *string `json:"next"`
		}
		got := mustStrictJSON[categories](t, "categories", r)
		if len(got.Categories) != 2 || got.Categories[0].Category != "order" || got.Categories[0].Streams != 1 ||
			got.Categories[1].Category != "user" || got.Categories[1].Streams != 4 || !got.Categories[1].Exact || got.Next != nil {
			t.Fatalf("categories: %s", r)
		}
		// A page at a time: next is the page's last category.
		r = as.As(t, admin, "GET", "/v1/categories?limit=1", "")
		got = mustStrictJSON[categories](t, "categories", r)
		if len(got.Categories) != 1 || got.Categories[0].Category != "order" || got.Next == nil || *got.Next != "order" {
			t.Fatalf("categories, limit 1: %s", r)
		}
		r = as.As(t, admin, "GET", "/v1/categories?limit=1&after=order", "")
		got = mustStrictJSON[categories](t, "categories", r)
		if len(got.Categories) != 1 || got.Categories[0].Category != "user" || got.Next != nil {
			t.Fatalf("categories after order: %s", r)
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=~x", "limit=1&limit=2"} {
			MustProblem(t, as.As(t, admin, "GET", "/v1/categories?"+q, ""), http.StatusBadRequest, "invalid_request")
		}
	})
	t.Run("EventByID", func(t *testing.T) {
		r := as.As(t, admin, "GET", "/v1/events/"+v7.String(), "")
		e := r.JSON(t)
		if r.Status != http.StatusOK || e["stream"] != "user-1" || e["version"] != float64(1) || e["type"] != "UserCreated" || e["id"] != v7.String() {
			t.Fatalf("v7: %s", r)
		}
		if md, _ := e["metadata"].(map[string]any); md["m"] != float64(1) {
			t.Fatalf("metadata: %s", r)
		}
		r = as.As(t, admin, "GET", "/v1/events/"+v4.String(), "")
		if e := r.JSON(t); r.Status != http.StatusOK || e["stream"] != "order-1" || e["type"] != "OrderPlaced" {
			t.Fatalf("v4: %s", r)
		}
		// The server-generated id of user-1's second event.
		r = as.As(t, admin, "GET", "/v1/streams/user-1/events?from=2", "")
		id := mustPage(t, r).Events[0].ID
		if r := as.As(t, admin, "GET", "/v1/events/"+id, ""); r.Status != http.StatusOK || r.JSON(t)["version"] != float64(2) {
			t.Fatalf("generated id: %s", r)
		}
		MustProblem(t, as.As(t, admin, "GET", "/v1/events/"+uuid.Must(uuid.NewV7()).String(), ""), http.StatusNotFound, "event_not_found")
		MustProblem(t, as.As(t, admin, "GET", "/v1/events/"+uuid.NewString(), ""), http.StatusNotFound, "event_not_found")
		MustProblem(t, as.As(t, admin, "GET", "/v1/events/not-a-uuid", ""), http.StatusBadRequest, "invalid_request")
	})
	t.Run("Cluster", func(t *testing.T) {
		r := as.As(t, admin, "GET", "/v1/cluster", "")
		var c struct {
			Keyspace  string `json:"keyspace"`
			Shards    int    `json:"shards"`
			Self      string `json:"self"`
			Instances []struct {
				ID            string `json:"id"`
				Version       string `json:"version"`
				SchemaVersion int    `json:"schema_version"`
				Shards        []struct {
					Shard int   `json:"shard"`
					Epoch int64 `json:"epoch"`
				} `json:"shards"`
			} `json:"instances"`
			Unowned []int `json:"unowned_shards"`
			Nodes   []struct {
				Address string `json:"address"`
				State   string `json:"state"`
			} `json:"cassandra_nodes"`
		}
		if err := json.Unmarshal(r.Body, &c); err != nil || r.Status != http.StatusOK {
			t.Fatalf("cluster: %v: %s", err, r)
		}
		if c.Keyspace != as.Opts.Cassandra.Keyspace || c.Shards != 4 || len(c.Instances) != 1 || c.Instances[0].ID != c.Self ||
			c.Instances[0].Version != "test-version" || c.Instances[0].SchemaVersion != cassandra.LatestSchemaVersion() ||
			len(c.Instances[0].Shards) != 4 || len(c.Unowned) != 0 {
			t.Fatalf("cluster: %s", r)
		}
		for i, sh := range c.Instances[0].Shards {
			if sh.Shard != i || sh.Epoch < 1 {
				t.Fatalf("shards: %s", r)
			}
		}
		hosts := cassandratest.Hosts()
		if len(c.Nodes) == 0 || !slices.ContainsFunc(c.Nodes, func(n struct {
			Address string `json:"address"`
			State   string `json:"state"`
		}) bool {
			return slices.Contains(hosts, n.Address) && n.State == "up"
		}) {
			t.Fatalf("nodes %+v, want one of %v up", c.Nodes, hosts)
		}
	})
	t.Run("Scopes", func(t *testing.T) {
		some := as.MustToken(t, "some-users", 0, "read:user-1*")
		if got := listAll(t, as, some, "", 1); !slices.Equal(got, []string{"user-1", "user-10"}) {
			t.Fatalf("read:user-1* lists %v", got)
		}
		r := as.As(t, some, "GET", "/v1/categories", "")
		if r.Status != http.StatusOK || string(r.Body) != `{"categories":[],"next":null}`+"\n" {
			t.Fatalf("read:user-1* categories: %q", r.Body)
		}
		users := as.MustToken(t, "users", 0, "read:user*")
		r = as.As(t, users, "GET", "/v1/categories", "")
		if got := r.JSON(t)["categories"].([]any); len(got) != 1 || got[0].(map[string]any)["category"] != "user" {
			t.Fatalf("read:user* categories: %s", r)
		}
		// An event outside the key's scopes is not found, as if absent.
		MustProblem(t, as.As(t, some, "GET", "/v1/events/"+v4.String(), ""), http.StatusNotFound, "event_not_found")
		if r := as.As(t, some, "GET", "/v1/events/"+v7.String(), ""); r.Status != http.StatusOK {
			t.Fatalf("in scope: %s", r)
		}
		MustProblem(t, as.As(t, users, "GET", "/v1/cluster", ""), http.StatusForbidden, "forbidden")
		MustProblem(t, as.As(t, "", "GET", "/v1/streams", ""), http.StatusUnauthorized, "unauthenticated")
	})
}

// TestDiscoveryNotImplemented: the per-stream store has no catalog.
// A store without the catalog or the cluster view (only log.Store: the
// Cassandra store has both) gets 501 on the discovery routes.
func TestDiscoveryNotImplemented(t *testing.T) {
	ts := MustServerWrapped(t, func(s log.Store) log.Store { return struct{ log.Store }{s} }, nil)
	for _, p := range []string{"/v1/streams", "/v1/categories", "/v1/events/" + uuid.NewString(), "/v1/cluster"} {
		MustProblem(t, ts.Do(t, "GET", p, nil), http.StatusNotImplemented, "not_implemented")
	}
}

// TestEventByIDKeyReadingOneOfTwoStreams: two streams of one shard hold
// the same event id, appended apart; their fills file it in the same
// index partition (the id's minute, one slot). The index kept one row per
// id and partition, the later commit's, so a key that may read only the
// first stream was answered 404 event_not_found for its event. A key that
// may read both is answered the earliest committed, one that may read
// neither 404.
func TestEventByIDKeyReadingOneOfTwoStreams(t *testing.T) {
	as := mustShardAuthServerWith(t, func(o *shardstore.Options) { o.IndexSlot = func() int { return 2 } })
	admin := as.MustToken(t, "admin", 0, "admin")
	var first, second string
	for i := 1; second == ""; i++ {
		st := "acct-" + strconv.Itoa(i)
		switch {
		case first == "":
			first = st
		case partition.ShardOf(st, 4) == partition.ShardOf(first, 4):
			second = st
		}
	}
	id := uuid.Must(uuid.NewV7())
	for _, st := range []string{first, second} {
		body := `{"events":[{"id":"` + id.String() + `","type":"Opened","data":{"s":"` + st + `"}}]}`
		if r := as.As(t, admin, "POST", "/v1/streams/"+st+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append %s: %s", st, r)
		}
		// A read of the stream writes it, and its index rows, first.
		if r := as.As(t, admin, "GET", "/v1/streams/"+st+"/events", ""); r.Status != http.StatusOK {
			t.Fatalf("read %s: %s", st, r)
		}
	}
	for _, c := range []struct {
		name, scope, want string
	}{
		{"OnlyFirst", "read:" + first, first},
		{"OnlySecond", "read:" + second, second},
		{"Both", "read:acct-*", first},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := as.MustToken(t, c.name, 0, c.scope)
			r := as.As(t, key, "GET", "/v1/events/"+id.String(), "")
			if e := r.JSON(t); r.Status != http.StatusOK || e["stream"] != c.want || e["version"] != float64(1) || e["id"] != id.String() {
				t.Fatalf("GET /v1/events/%s with %s: %s; want %s@1", id, c.scope, r, c.want)
			}
		})
	}
	MustProblem(t, as.As(t, as.MustToken(t, "other", 0, "read:other-*"), "GET", "/v1/events/"+id.String(), ""), http.StatusNotFound, "event_not_found")
}
