package clienttest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// TestGroupShardPath: on the shard-log write path the client keeps the
// member secret its join was answered and sends it with the member's
// heartbeats, reads, acknowledgements and leave; another client without
// it is refused (403 invalid_member_secret) until given the secret;
// DeleteGroup removes the group.
func TestGroupShardPath(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := cassandratest.Options(t)
	o.Registerer, o.Shards = reg, 4
	o.GroupLeaseTTL, o.GroupLeaseGrace = groupTTL, 100*time.Millisecond
	if _, err := cassandratest.Migrate(t, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cassandratest.DropBounded(t, o) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api, err := httpapi.New(store, httpapi.Config{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	defer ts.Close()

	c, other := MustClient(t, ts.URL), MustClient(t, ts.URL)
	for _, s := range []string{"cs-1", "cs-2", "cs-3"} {
		if _, err := c.Append(ctx, s, client.Any, client.EventData{Type: "T", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := c.JoinGroup(ctx, "g", client.JoinOptions{Feed: client.CategoryFeed("cs"), Member: "a"})
	if err != nil || m.Secret == "" || len(m.Partitions) != 4 {
		t.Fatalf("join: %+v %v", m, err)
	}
	if _, err := c.JoinGroup(ctx, "g", client.JoinOptions{Feed: client.CategoryFeed("cs"), Member: "a"}); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	var p *client.Problem
	if _, err := other.ReadGroup(ctx, "g", "a", client.GroupReadOptions{}); !errors.As(err, &p) || p.Status != 403 || p.Code != "invalid_member_secret" {
		t.Fatalf("read without the secret: %v", err)
	}
	if _, err := other.JoinGroup(ctx, "g", client.JoinOptions{Feed: client.CategoryFeed("cs"), Member: "a", Secret: m.Secret}); err != nil {
		t.Fatalf("heartbeat from another client with the secret: %v", err)
	}
	page, err := c.ReadGroup(ctx, "g", "a", client.GroupReadOptions{})
	if err != nil || len(page.Events) != 3 {
		t.Fatalf("read: %d events, %v", len(page.Events), err)
	}
	var acks []client.Ack
	for _, pr := range page.Partitions {
		acks = append(acks, client.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
	}
	if _, err := c.AckGroup(ctx, "g", "a", acks...); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := c.LeaveGroup(ctx, "g", "a"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := c.DeleteGroup(ctx, "g"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GroupInfo(ctx, "g"); !errors.As(err, &p) || p.Code != "group_not_found" {
		t.Fatalf("info after delete: %v", err)
	}
}
