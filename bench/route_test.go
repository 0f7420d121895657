package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/partition"
)

// TestOwnerRouter: --route owner sends a stream's appends to the instance
// GET /v1/cluster names as its shard's owner, and to --url when no listed
// instance owns the shard.
func TestOwnerRouter(t *testing.T) {
	b := httptest.NewServer(http.NotFoundHandler())
	defer b.Close()
	var a *httptest.Server
	a = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/cluster" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"shards":3,"instances":[{"address":%q,"shards":[{"shard":0}]},{"address":%q,"shards":[{"shard":1}]}],"unowned_shards":[2]}`,
			strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"))
	}))
	defer a.Close()
	c := &Config{URL: a.URL, SpreadURLs: []string{b.URL}, Route: "owner"}
	r, err := newOwnerRouter(context.Background(), http.DefaultClient, c)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: a.URL, 1: b.URL, 2: a.URL}
	seen := map[int]bool{}
	for i := range 100 {
		s := fmt.Sprintf("order-%d", i)
		sh := partition.ShardOf(s, 3)
		seen[sh] = true
		if got := r.base(s); got != want[sh] {
			t.Fatalf("%s (shard %d) goes to %s, want %s", s, sh, got, want[sh])
		}
	}
	if len(seen) != 3 {
		t.Fatalf("the streams hit shards %v, want all three", seen)
	}
	if _, err := newOwnerRouter(context.Background(), http.DefaultClient, &Config{URL: b.URL, Route: "owner"}); err == nil {
		t.Fatal("a server without /v1/cluster: no error")
	}
}
