package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// scanCapStore lists streams through a catalog with a small scan cap, so
// a test reaches the cap with a few streams.
type scanCapStore struct {
	*shardstore.Store
	cat *catalog.Catalog
}

func (s scanCapStore) ListStreams(ctx context.Context, q log.StreamQuery) (log.StreamPage, error) {
	return s.cat.ListStreams(ctx, q)
}

func (s scanCapStore) Categories(ctx context.Context, q log.CategoryQuery) (log.CategoryPage, error) {
	return s.cat.Categories(ctx, q)
}

// scanCapServer starts a server behind auth whose catalog scans at most
// two rows a page, appends one event to each of streams as an admin and
// waits until the catalog lists them all. It returns the server and a
// token of a key with the scopes given.
func scanCapServer(t *testing.T, streamIDs []string, scopes ...string) (as *authServer, reader string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits, so.Cassandra.Registerer = testLimits, reg
	})
	session := cassandratest.Session(t, opts.Cassandra)
	cat := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: opts.Cassandra.Shards, ScanCap: 2})
	ks, err := keystore.New(session, opts.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ts := startServer(t, store, opts, reg, func(s log.Store) log.Store { return scanCapStore{Store: store, cat: cat} },
		func(c *httpapi.Config) { c.Auth, c.Keys = a, ks })
	as = &authServer{testServer: ts, Keys: ks, Auth: a}
	admin := as.MustToken(t, "admin", 0, "admin")
	for _, st := range streamIDs {
		if r := as.As(t, admin, "POST", "/v1/streams/"+st+"/events", `{"events":[{"type":"T","data":{}}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append %s: %s", st, r)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(listAll(t, as, admin, "", 100)) != len(streamIDs) {
		if time.Now().After(deadline) {
			t.Fatalf("catalog: %v", listAll(t, as, admin, "", 100))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return as, as.MustToken(t, "reader", 0, scopes...)
}

// TestListStreamsNextHidesUnreadable: a listing page cut by the store's
// scan cap on a stream the key may not read must not name that stream in
// its "next", and paging on from it still lists every readable stream.
func TestListStreamsNextHidesUnreadable(t *testing.T) {
	secret := []string{"b-secret-1", "b-secret-2", "b-secret-3", "b-secret-4", "b-secret-5"}
	as, reader := scanCapServer(t, append([]string{"a-1", "c-1"}, secret...), "read:a-*", "read:c-*")
	var (
		got   []string
		after string
	)
	for range 20 {
		path := "/v1/streams?limit=100"
		if after != "" {
			path += "&after=" + after
		}
		r := as.As(t, reader, "GET", path, "")
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		if strings.Contains(string(r.Body), "secret") {
			t.Fatalf("GET %s names a stream the key may not read: %s", path, r)
		}
		p := mustStrictJSON[streamListJSON](t, "stream list", r)
		for _, s := range p.Streams {
			got = append(got, s.Stream)
		}
		if p.Next == nil {
			break
		}
		after = *p.Next
	}
	if want := []string{"a-1", "c-1"}; !slices.Equal(got, want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	// A next the server did not hand out is refused.
	MustProblem(t, as.As(t, reader, "GET", "/v1/streams?after=~AAAA", ""), http.StatusBadRequest, "invalid_request")
}

// TestListCategoriesNextHidesUnreadable: a page of categories cut by the
// store's scan cap on a category the key may not read must not name it in
// its "next", and paging on from it still lists every category the key
// may read, once.
func TestListCategoriesNextHidesUnreadable(t *testing.T) {
	as, reader := scanCapServer(t, []string{"a-1", "bsecret1-1", "bsecret2-1", "bsecret3-1", "bsecret4-1", "c-1", "dsecret-1"}, "read:a*", "read:c*")
	var (
		got   []string
		after string
		pages int
	)
	for range 20 {
		path := "/v1/categories?limit=100"
		if after != "" {
			path += "&after=" + after
		}
		r := as.As(t, reader, "GET", path, "")
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		if strings.Contains(string(r.Body), "secret") {
			t.Fatalf("GET %s names a category the key may not read: %s", path, r)
		}
		pages++
		p := r.JSON(t)
		for _, c := range p["categories"].([]any) {
			got = append(got, c.(map[string]any)["category"].(string))
		}
		next, ok := p["next"].(string)
		if !ok {
			break
		}
		after = next
	}
	if want := []string{"a", "c"}; !slices.Equal(got, want) || pages < 3 {
		t.Fatalf("listing %v in %d pages, want %v in 3 or more", got, pages, want)
	}
	MustProblem(t, as.As(t, reader, "GET", "/v1/categories?after=~AAAA", ""), http.StatusBadRequest, "invalid_request")
}
