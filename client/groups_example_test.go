package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/eventlog/eventlog/client"
)

// Run this program several times at once: the streams of category "order"
// are split among the running copies, each stream handled by one copy at
// a time, in order. Stop a copy (Ctrl-C) and the others take over its
// streams from its last acknowledged event; start it again and the group
// rebalances. Like the other examples it expects a server on
// 127.0.0.1:8080.
func ExampleClient_Consume() {
	c, err := client.New(client.Options{BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	host, _ := os.Hostname()
	err = c.Consume(ctx, "order-projector", client.ConsumeOptions{
		Feed:   client.CategoryFeed("order"),
		Member: fmt.Sprintf("%s-%d", host, os.Getpid()), // one process per id
		Batch:  100,
	}, func(ctx context.Context, ev client.FeedEvent) error {
		// At least once: after a crash or a lost lease an event may come
		// again, so handle it idempotently (e.g. upsert keyed by stream
		// and version). Returning an error retries this event.
		fmt.Println(ev.Stream, ev.Version, ev.Type)
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// The low-level calls behind Consume: join (and heartbeat), read,
// acknowledge each partition's progress, leave.
func ExampleClient_ReadGroup() {
	ctx := context.Background()
	c, err := client.New(client.Options{BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.JoinGroup(ctx, "audit", client.JoinOptions{Feed: client.AllFeed, Member: "audit-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding", len(m.Partitions), "partitions; heartbeat every", m.LeaseTTL/3)

	page, err := c.ReadGroup(ctx, "audit", "audit-1", client.GroupReadOptions{Limit: 50})
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range page.Events {
		fmt.Println(ev.Partition, ev.Stream, ev.Version, ev.Position)
	}
	var acks []client.Ack
	for _, pr := range page.Partitions {
		acks = append(acks, client.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
	}
	if len(acks) > 0 {
		_, err = c.AckGroup(ctx, "audit", "audit-1", acks...)
		if errors.Is(err, client.ErrLeaseLost) {
			fmt.Println("some partitions moved on; their events will be delivered to their new owner")
		} else if err != nil {
			log.Fatal(err)
		}
	}
	if err := c.LeaveGroup(ctx, "audit", "audit-1"); err != nil {
		log.Fatal(err)
	}
}
