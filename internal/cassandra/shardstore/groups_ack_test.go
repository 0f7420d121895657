package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/groups"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// mustGroupTokens returns the position codec of o's keyspace and the id
// of group, as a leaked token secret gives them: tests forge with them.
func mustGroupTokens(t *testing.T, o cassandra.Options, group string) (*groups.Tokens, gocql.UUID) {
	t.Helper()
	var (
		secret []byte
		id     gocql.UUID
	)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`SELECT token_secret FROM keyspace_config WHERE id = 0`).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	if err := sess.Query(`SELECT id FROM shard_groups WHERE group_name = ?`, group).Scan(&id); err != nil {
		t.Fatal(err)
	}
	tokens, err := groups.NewTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tokens, id
}

// TestGroupAckInsideARowPastItsEvents: an authentic token (its secret
// leaked) for a position inside a committed log row but past the row's
// events is refused with invalid_position and moves nothing. Accepted, it
// became a checkpoint every read refused, the partition stuck for good.
// A position inside the row before its last event still goes through.
func TestGroupAckInsideARowPastItsEvents(t *testing.T) {
	o := groupKeyspace(t, 1)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	for i := range 2 {
		if _, err := appendN(ctx, s, fmt.Sprintf("row-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	m := mustJoin(t, s, "g", log.AllFeed, "a")
	p := mustRead(t, s, "g", "a")
	if len(p.Events) != 6 || len(m.Partitions) != 1 {
		t.Fatalf("read %d events over %d partitions, want 6 over 1", len(p.Events), len(m.Partitions))
	}
	tokens, id := mustGroupTokens(t, o, "g")
	// The first event's position: after it, inside its row of 3.
	first, err := tokens.Decode(p.Events[0].Position, "g", id, "a")
	if err != nil {
		t.Fatal(err)
	}
	if first.Pos.Index != 1 {
		t.Fatalf("first event's position %+v, want index 1 of its row", first.Pos)
	}
	epoch := p.Partitions[0].Epoch
	for _, index := range []int{3, 4, 1000} {
		past := first
		past.Pos.Index = index
		_, err := s.AckGroup(ctx, "g", "a", []log.Ack{{Partition: 0, Epoch: epoch, Position: tokens.Encode(past)}})
		mustInvalidPosition(t, fmt.Sprintf("index %d of a row of 3", index), err)
	}
	if info, err := s.DescribeGroup(ctx, "g"); err != nil || info.Lag != 6 {
		t.Fatalf("lag %d (%v) after refused acks, want 6", info.Lag, err)
	}
	// Inside the row, before its last event: accepted, and the partition
	// reads on from there.
	inside := first
	inside.Pos.Index = 2
	if _, err := s.AckGroup(ctx, "g", "a", []log.Ack{{Partition: 0, Epoch: epoch, Position: tokens.Encode(inside)}}); err != nil {
		t.Fatalf("ack inside the row: %v", err)
	}
	if p := mustRead(t, s, "g", "a"); len(p.Events) != 4 {
		t.Fatalf("read %d events after acknowledging 2, want 4", len(p.Events))
	}
}

// TestGroupReleasedOnlyToItsHolder: once a partition is released at an
// epoch, a release of it at that epoch by another member (which never
// held it, and knows the epoch from a describe) is lease lost, as any
// acknowledgement of a partition it does not hold; it was answered
// "released", with a checkpoint token minted for it. The member that
// released it is still answered "released" when it repeats the release
// with a position it was handed.
func TestGroupReleasedOnlyToItsHolder(t *testing.T) {
	o := groupKeyspace(t, 1)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	if _, err := appendN(ctx, s, "rel-1", log.Any, 3); err != nil {
		t.Fatal(err)
	}
	a := mustJoin(t, s, "g", log.AllFeed, "a")
	if len(a.Partitions) != 1 {
		t.Fatalf("a holds %d partitions, want 1", len(a.Partitions))
	}
	mustJoin(t, s, "g", log.AllFeed, "b") // idle: a holds the only shard
	p := mustRead(t, s, "g", "a")
	release := acksOf(p)
	release[0].Release = true
	res, err := s.AckGroup(ctx, "g", "a", release)
	if err != nil || len(res) != 1 || !res[0].Released {
		t.Fatalf("a's release: %+v %v", res, err)
	}
	epoch := release[0].Epoch
	var lost *log.LeaseLostError
	for _, c := range []struct {
		name string
		ack  log.Ack
	}{
		{"Release", log.Ack{Partition: 0, Epoch: epoch, Release: true}},
		{"Ack", log.Ack{Partition: 0, Epoch: epoch}},
	} {
		res, err := s.AckGroup(ctx, "g", "b", []log.Ack{c.ack})
		if !errors.As(err, &lost) || len(res) != 0 {
			t.Errorf("%s by b, which never held the partition: %+v %v, want lease lost", c.name, res, err)
		}
	}
	// a repeats its release, as a retry after a lost answer does.
	res, err = s.AckGroup(ctx, "g", "a", release)
	if err != nil || len(res) != 1 || !res[0].Released {
		t.Fatalf("a's repeated release: %+v %v", res, err)
	}
	if info, err := s.DescribeGroup(ctx, "g"); err != nil || info.Lag != 0 || info.Partitions[0].Owner != "" {
		t.Fatalf("after the releases: %+v %v", info, err)
	}
}

// streamsOn returns n stream ids of shard among shards, prefixed.
func streamsOn(prefix string, shard, shards, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); partition.ShardOf(id, shards) == shard {
			out = append(out, id)
		}
	}
	return out
}

// TestGroupAckPartlyAppliedWithLeaseLost: an acknowledgement request of
// three partitions, one applied, one refused as not held, one failing on
// an outage: its *log.PartialAckError must match log.ErrLeaseLost as well
// as log.ErrUnavailable, and name the applied and the lost partitions. It
// matched only the outage, so a caller testing for a lost lease missed it.
func TestGroupAckPartlyAppliedWithLeaseLost(t *testing.T) {
	o := groupKeyspace(t, 3)
	var (
		fail  atomic.Bool
		calls atomic.Int32
	)
	s := open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		if op == "group ack" && fail.Load() && calls.Add(1) > 1 {
			return gocql.ErrNoConnections
		}
		return nil
	}})
	defer s.Close()
	ctx := context.Background()
	for shard := range 2 {
		for _, id := range streamsOn("pl", shard, 3, 2) {
			if _, err := appendN(ctx, s, id, log.Any, 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m := mustJoin(t, s, "g", log.AllFeed, "a"); len(m.Partitions) != 3 {
		t.Fatalf("a holds %d partitions, want 3", len(m.Partitions))
	}
	p := mustRead(t, s, "g", "a")
	if len(p.Events) != 8 || len(p.Partitions) != 3 {
		t.Fatalf("read %d events of %d partitions, want 8 of 3", len(p.Events), len(p.Partitions))
	}
	acks := acksOf(p)
	// Partition 2 (no events) under an epoch it never had: not held.
	acks[2] = log.Ack{Partition: 2, Epoch: acks[2].Epoch + 1}
	fail.Store(true)
	_, err := s.AckGroup(ctx, "g", "a", acks)
	fail.Store(false)
	var pa *log.PartialAckError
	if !errors.As(err, &pa) || len(pa.Acked) != 1 || !slices.Equal(pa.Lost, []int{2}) {
		t.Fatalf("ack: %v, want a partial ack of one partition with partition 2 lost", err)
	}
	if !errors.Is(err, log.ErrLeaseLost) || !errors.Is(err, log.ErrUnavailable) {
		t.Errorf("ack: %v matches lease lost %v, unavailable %v: want both", err, errors.Is(err, log.ErrLeaseLost), errors.Is(err, log.ErrUnavailable))
	}
	var lost *log.LeaseLostError
	if !errors.As(err, &lost) || !slices.Equal(lost.Partitions, []int{2}) {
		t.Errorf("ack: %v, want a *log.LeaseLostError of partition 2", err)
	}
}

// TestGroupReadFromACheckpointPastARow: a checkpoint inside a log row past
// its events, as builds before acks were checked against the row
// (CheckInRow) could store, is read on from the next row, skipping no
// event; every read from it was refused (the position past the row's
// events), the partition stuck for good. Written here with CQL.
func TestGroupReadFromACheckpointPastARow(t *testing.T) {
	o := groupKeyspace(t, 1)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	for i := range 3 {
		if _, err := appendN(ctx, s, fmt.Sprintf("stuck-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	mustJoin(t, s, "g", log.AllFeed, "a")
	p := mustRead(t, s, "g", "a")
	if len(p.Events) != 9 {
		t.Fatalf("read %d events, want 9", len(p.Events))
	}
	tokens, id := mustGroupTokens(t, o, "g")
	first, err := tokens.Decode(p.Events[0].Position, "g", id, "a")
	if err != nil {
		t.Fatal(err)
	}
	row := first.Pos.Seq // the first row, of 3 events
	sess := cassandratest.Session(t, o)
	for _, index := range []int{3, 1000} {
		t.Run(fmt.Sprintf("Index%d", index), func(t *testing.T) {
			// Conditional, as the store writes the row (Paxos timestamps).
			applied, err := sess.Query(`UPDATE shard_group_leases SET cp_seq = ?, cp_index = ? WHERE group_name = 'g' AND shard = 0 IF EXISTS`,
				row, index).MapScanCAS(map[string]any{})
			if err != nil || !applied {
				t.Fatalf("write the checkpoint: %v %v", applied, err)
			}
			p, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Limit: 1000})
			if err != nil {
				t.Fatalf("read from %d.%d: %v", row, index, err)
			}
			if len(p.Events) != 6 || p.Events[0].Stream != "stuck-1" {
				t.Fatalf("read %d events from %d.%d, want the 6 after the row", len(p.Events), row, index)
			}
			if info, err := s.DescribeGroup(ctx, "g"); err != nil || info.Lag != 6 {
				t.Fatalf("lag %d (%v) from %d.%d, want 6", info.Lag, err, row, index)
			}
			// Acknowledged on, the checkpoint leaves the row.
			if _, err := s.AckGroup(ctx, "g", "a", acksOf(p)); err != nil {
				t.Fatal(err)
			}
			if p := mustRead(t, s, "g", "a"); len(p.Events) != 0 {
				t.Fatalf("read %d events after the acknowledgement, want none", len(p.Events))
			}
		})
	}
}
