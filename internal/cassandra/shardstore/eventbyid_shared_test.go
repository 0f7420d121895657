package shardstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestEventByIDSharedAcrossStreams: ids are unique within a stream only,
// so one id may be in two streams (two tenants' events derived from the
// same command). Each has its index row; the lookup ended at whichever
// row answered first, and when that one named the stream the caller may
// not read, the caller was told 404 for an event in a stream it may read.
// The streams are in different shards here, so their rows are in
// different partitions and both are kept.
func TestEventByIDSharedAcrossStreams(t *testing.T) {
	const shards = 4
	o := newKeyspace(t, shards)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Pairs of streams in different shards, one of tenant a, one of b.
	type pair struct {
		id   uuid.UUID
		a, b log.StreamID
	}
	var pairs []pair
	for i := 0; len(pairs) < 10; i++ {
		a, b := fmt.Sprintf("ta-%d", i), fmt.Sprintf("tb-%d", i)
		if partition.ShardOf(a, shards) == partition.ShardOf(b, shards) {
			continue
		}
		p := pair{id: uuid.Must(uuid.NewV7()), a: log.StreamID(a), b: log.StreamID(b)}
		for _, st := range []log.StreamID{p.a, p.b} {
			if _, err := s.Append(ctx, log.AppendRequest{Stream: st, Expected: log.NoStream,
				Events: []log.ProposedEvent{ev(p.id, "Shared", `{"s":"`+string(st)+`"}`)}}); err != nil {
				t.Fatal(err)
			}
			readAll(t, s, string(st)) // its stream, and so its index row, written
		}
		pairs = append(pairs, p)
	}
	for _, p := range pairs {
		for _, want := range []log.StreamID{p.a, p.b} {
			e, err := s.EventByID(ctx, p.id, func(st log.StreamID) bool { return st == want })
			if err != nil || e.Stream != want || e.Version != 1 || e.ID != p.id || string(e.Data) != `{"s":"`+string(want)+`"}` {
				t.Errorf("EventByID(%s) by a caller who may read only %s: %s@%d %s, %v", p.id, want, e.Stream, e.Version, e.Data, err)
			}
		}
		// A caller who may read neither is not told it exists.
		if _, err := s.EventByID(ctx, p.id, func(log.StreamID) bool { return false }); err != log.ErrEventNotFound {
			t.Errorf("EventByID(%s) by a caller who may read neither: %v, want ErrEventNotFound", p.id, err)
		}
	}
}

// TestEventByIDSharedInOnePartition: two streams of one shard hold the
// same id, appended in separate commits whose fills file the id in the
// same partition (the id's minute, the same slot). The index kept one row
// per id and partition, which the later commit overwrote: a caller who
// may read only the first stream was told 404 for its event. Every commit
// of the id is kept now, and a caller who may read both is answered the
// earliest committed. A third stream, in another shard, committed last,
// is answered only to a caller who may read it alone.
func TestEventByIDSharedInOnePartition(t *testing.T) {
	const shards = 4
	o := newKeyspace(t, shards)
	s := open(t, shardstore.Options{Cassandra: o, IndexSlot: func() int { return 3 }})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	only := func(want ...log.StreamID) func(log.StreamID) bool {
		return func(st log.StreamID) bool { return slices.Contains(want, st) }
	}
	for _, tc := range []struct {
		name string
		id   uuid.UUID
	}{
		{"v7", uuid.Must(uuid.NewV7())},
		{"v4", uuid.New()}, // filed under its fill's minute, in slot 0
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b, c log.StreamID // a and b in one shard, c in another
			for i := 0; a == "" || b == "" || c == ""; i++ {
				st := fmt.Sprintf("%s%d-1", tc.name, i)
				switch sh := partition.ShardOf(st, shards); {
				case a == "":
					a = log.StreamID(st)
				case sh == partition.ShardOf(string(a), shards) && b == "":
					b = log.StreamID(st)
				case sh != partition.ShardOf(string(a), shards) && c == "":
					c = log.StreamID(st)
				}
			}
			for _, st := range []log.StreamID{a, b, c} {
				if _, err := s.Append(ctx, log.AppendRequest{Stream: st, Expected: log.NoStream,
					Events: []log.ProposedEvent{ev(tc.id, "Shared", `{"s":"`+string(st)+`"}`)}}); err != nil {
					t.Fatal(err)
				}
				readAll(t, s, string(st)) // its stream, and so its index row, written
			}
			for _, c := range []struct {
				name    string
				visible func(log.StreamID) bool
				want    log.StreamID
			}{
				{"OnlyFirst", only(a), a},
				{"OnlySecond", only(b), b},
				{"OnlyThird", only(c), c},
				{"All", nil, a},
				{"SecondAndThird", only(b, c), b},
			} {
				e, err := s.EventByID(ctx, tc.id, c.visible)
				if err != nil || e.Stream != c.want || e.Version != 1 || e.ID != tc.id || string(e.Data) != `{"s":"`+string(c.want)+`"}` {
					t.Errorf("%s: EventByID(%s): %s@%d %s, %v; want %s@1", c.name, tc.id, e.Stream, e.Version, e.Data, err, c.want)
				}
			}
			if _, err := s.EventByID(ctx, tc.id, only()); err != log.ErrEventNotFound {
				t.Errorf("EventByID(%s) by a caller who may read none: %v, want ErrEventNotFound", tc.id, err)
			}
		})
	}
}
