package httpapi

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/console"
	"github.com/eventlog/eventlog/internal/log"
)

// TestOpenAPIHasEveryRoute checks the description against the router, both
// ways: every route the server registers (over a store with feeds and
// groups, over the shard-log store, whose groups can also be deleted,
// and the web console) is described, and every described operation is
// routed. Whether each operation is described correctly is checked on
// real traffic by the HTTP tests (spectest).
func TestOpenAPIHasEveryRoute(t *testing.T) {
	store, _ := shardstoretest.NewStore(t, nil)
	param := regexp.MustCompile(`:([a-z]+)`)
	var routed []string
	for _, st := range []log.Store{store} {
		s, err := New(st, Config{Console: console.NewHandler()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.echo.Router().Routes() {
			routed = append(routed, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
		}
	}
	slices.Sort(routed)
	routed = slices.Compact(routed)

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var described []string
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				described = append(described, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routed)
	slices.Sort(described)
	if !slices.Equal(routed, described) {
		t.Fatalf("routes and description differ\nrouted:    %v\ndescribed: %v", routed, described)
	}
}
