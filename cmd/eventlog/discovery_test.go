package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
)

// mustShardServer is the real HTTP API over a shard-log store (the
// discovery routes are served there) in a keyspace of its own.
func mustShardServer(tb testing.TB) *testServer {
	tb.Helper()
	o := cassandratest.Options(tb)
	o.Shards = 2
	if _, err := cassandratest.Migrate(tb, o); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cassandratest.DropBounded(tb, o) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second, Version: "cli-test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	api, err := httpapi.New(store, httpapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{}
	ts.Server = httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return ts
}

// TestDiscoveryCommands: streams list, categories, event ID, cluster and
// groups delete against a real server.
func TestDiscoveryCommands(t *testing.T) {
	ts := mustShardServer(t)
	id := uuid.Must(uuid.NewV7())
	ts.mustRun(t, exitOK, "append", "user-1", "--type", "UserCreated", "--data", `{"name":"Ada"}`, "--id", id.String())
	ts.mustRun(t, exitOK, "append", "user-2", "--type", "UserCreated", "--data", `{}`)
	ts.mustRun(t, exitOK, "append", "user-2", "--type", "UserRenamed", "--data", `{}`)
	ts.mustRun(t, exitOK, "append", "order-7", "--type", "OrderPlaced", "--data", `{}`)

	// The catalog is written behind the commit: wait until it lists all.
	var got []client.StreamSummary
	for deadline := time.Now().Add(20 * time.Second); ; {
		got = ndjson[client.StreamSummary](t, ts.mustRun(t, exitOK, "streams", "list", "-o", "ndjson").stdout)
		if len(got) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.Stream)
	}
	if !slices.Equal(ids, []string{"order-7", "user-1", "user-2"}) || got[2].Version != 2 {
		t.Fatalf("streams list: %+v", got)
	}
	var page []client.StreamSummary
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "streams", "list", "--prefix", "user-", "--limit", "1", "-o", "json").stdout), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Stream != "user-1" {
		t.Fatalf("--prefix user- --limit 1: %+v", page)
	}
	if out := ts.mustRun(t, exitOK, "streams", "list", "--category", "user").stdout; !strings.Contains(out, "user-2") || strings.Contains(out, "order-7") || !strings.HasPrefix(out, "STREAM") {
		t.Fatalf("table:\n%s", out)
	}
	ts.mustRun(t, exitInvalid, "streams", "list", "--category", "a-b")

	cats := ndjson[client.CategoryCount](t, ts.mustRun(t, exitOK, "categories", "-o", "ndjson").stdout)
	if len(cats) != 2 || cats[1] != (client.CategoryCount{Category: "user", Streams: 2, Exact: true}) {
		t.Fatalf("categories: %+v", cats)
	}
	if out := ts.mustRun(t, exitOK, "categories").stdout; !strings.Contains(out, "order") {
		t.Fatalf("categories table:\n%s", out)
	}

	var e client.Event
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "event", id.String(), "-o", "json").stdout), &e); err != nil {
		t.Fatal(err)
	}
	var data struct{ Name string }
	if err := e.DecodeData(&data); err != nil || e.Stream != "user-1" || e.Version != 1 || e.ID != id || data.Name != "Ada" {
		t.Fatalf("event: %+v", e)
	}
	if out := ts.mustRun(t, exitOK, "event", id.String()).stdout; !strings.Contains(out, "user-1") {
		t.Fatalf("event table:\n%s", out)
	}
	ts.mustRun(t, exitNotFound, "event", uuid.Must(uuid.NewV7()).String())
	ts.mustRun(t, exitUsage, "event", "nope")

	var cl client.Cluster
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "cluster", "-o", "json").stdout), &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Shards != 2 || len(cl.Instances) != 1 || cl.Instances[0].Version != "cli-test" || cl.Instances[0].SchemaVersion < 6 || len(cl.Nodes) == 0 {
		t.Fatalf("cluster: %+v", cl)
	}
	if out := ts.mustRun(t, exitOK, "cluster").stdout; !strings.Contains(out, "(this)") || !strings.Contains(out, "up") {
		t.Fatalf("cluster table:\n%s", out)
	}

	c, err := client.New(client.Options{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.JoinGroup(context.Background(), "billing", client.JoinOptions{Feed: client.CategoryFeed("user"), Member: "w-1"}); err != nil {
		t.Fatal(err)
	}
	ts.mustRun(t, exitOK, "groups", "delete", "billing")
	ts.mustRun(t, exitNotFound, "groups", "describe", "billing")
}
