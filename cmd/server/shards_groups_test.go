package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestShardsGroups: a consumer group on two shard-path servers over HTTP.
// Appends go to both; two members consume, each reading through one
// server and acknowledging through the other (positions and secrets are
// the keyspace's, not an instance's), handing shards over on revocation;
// every event comes exactly once. A third client without the member's
// secret is refused on either server.
func TestShardsGroups(t *testing.T) {
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	a := MustRunMain(t, o, "--migrate", "--shards=4", "--shard-lease-ttl=1s", "--group-lease-ttl=3s")
	b := MustRunMain(t, o, "--shard-lease-ttl=1s", "--group-lease-ttl=3s")
	clients := make([]*client.Client, 2)
	for i, m := range []*Main{a, b} {
		c, err := client.New(client.Options{BaseURL: "http://" + m.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const streams, perStream = 10, 4
	for i := range streams * perStream {
		c := clients[i%2]
		if _, err := c.Append(ctx, fmt.Sprintf("gs-%d", i%streams), client.Any, client.EventData{Type: "T", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	feed := client.CategoryFeed("gs")
	var (
		mu        sync.Mutex
		delivered = map[string]int{}
		total     int
		byMember  = map[string]int{}
	)
	// consume runs member: joins (heartbeat) through read, reads through
	// read, acknowledges and releases through ack, until every event was
	// delivered and it holds no revoked shard.
	consume := func(member string, read, ack *client.Client) error {
		secret := ""
		for {
			m, err := read.JoinGroup(ctx, "g", client.JoinOptions{Feed: feed, Member: member, Secret: secret})
			if err != nil {
				return fmt.Errorf("%s join: %w", member, err)
			}
			if m.Secret != "" {
				secret = m.Secret
			}
			if len(m.Revoked) > 0 {
				var rel []client.Ack
				for _, l := range m.Revoked {
					rel = append(rel, client.Ack{Partition: l.Partition, Epoch: l.Epoch, Release: true})
				}
				// ack never joined: it was given the secret.
				if _, err := ack.JoinGroup(ctx, "g", client.JoinOptions{Feed: feed, Member: member, Secret: secret}); err != nil {
					return fmt.Errorf("%s heartbeat on the other server: %w", member, err)
				}
				if _, err := ack.AckGroup(ctx, "g", member, rel...); err != nil {
					return fmt.Errorf("%s release: %w", member, err)
				}
			}
			p, err := read.ReadGroup(ctx, "g", member, client.GroupReadOptions{Limit: 2})
			if err != nil {
				return fmt.Errorf("%s read: %w", member, err)
			}
			var acks []client.Ack
			for _, pr := range p.Partitions {
				acks = append(acks, client.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
			}
			if len(acks) > 0 {
				if _, err := ack.JoinGroup(ctx, "g", client.JoinOptions{Feed: feed, Member: member, Secret: secret}); err != nil {
					return fmt.Errorf("%s heartbeat on the other server: %w", member, err)
				}
				if _, err := ack.AckGroup(ctx, "g", member, acks...); err != nil {
					return fmt.Errorf("%s ack: %w", member, err)
				}
			}
			mu.Lock()
			for _, e := range p.Events {
				delivered[fmt.Sprintf("%s@%d", e.Stream, e.Version)]++
			}
			total += len(p.Events)
			byMember[member] += len(p.Events)
			done := total >= streams*perStream
			mu.Unlock()
			if done && len(m.Revoked) == 0 && len(p.Events) == 0 {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- consume("m1", clients[0], clients[1]) }()
	time.Sleep(200 * time.Millisecond)
	go func() { errs <- consume("m2", clients[1], clients[0]) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	if len(delivered) != streams*perStream || byMember["m1"] == 0 || byMember["m2"] == 0 {
		t.Fatalf("delivered %d distinct events (want %d), by member %v", len(delivered), streams*perStream, byMember)
	}
	intruder, err := client.New(client.Options{BaseURL: "http://" + b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	var p *client.Problem
	if _, err := intruder.ReadGroup(ctx, "g", "m1", client.GroupReadOptions{}); !errors.As(err, &p) || p.Code != "invalid_member_secret" {
		t.Fatalf("read without the secret: %v", err)
	}
	info, err := clients[1].GroupInfo(ctx, "g")
	if err != nil || info.Lag != 0 || len(info.Partitions) != 4 {
		t.Fatalf("group: %+v %v", info, err)
	}
}
