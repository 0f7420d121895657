package shardstore_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// A state load whose bucket index is read before a bucket opens, and whose
// snapshot read comes after a snapshot was put in that new bucket, finds
// the snapshot past the head it reads: it restarts and answers the state
// at that head, from the events alone, exactly.
func TestReadStateSnapshotAhead(t *testing.T) {
	o := newKeyspace(t, 1)
	o.BucketMaxEvents = 3
	o.Limits.MaxEventsPerAppend = 3
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	const stream = "agg-late-snapshot"
	if _, err := appendN(ctx, s, stream, log.NoStream, 3); err != nil { // bucket 0 full: 1..3
		t.Fatal(err)
	}

	var ran atomic.Bool
	between := make(chan struct{})
	shardstore.SetStateHooks(s, func() {
		// After the bucket index was read: a new bucket (4..5) and a
		// snapshot at its head, before the snapshot read.
		defer close(between)
		if _, err := appendN(ctx, s, stream, log.ExpectedVersion(3), 2); err != nil {
			t.Error(err)
			return
		}
		if _, err := s.PutSnapshot(ctx, stream, 5, json.RawMessage(`{"at":5}`)); err != nil {
			t.Error(err)
			return
		}
		ran.Store(true)
	}, func() { <-between })

	var (
		states []log.State
		got    []int64
	)
	err := s.ReadState(ctx, stream, func(st log.State) error {
		states = append(states, st)
		return nil
	}, func(e *log.RecordedEvent) error {
		got = append(got, e.Version)
		return nil
	})
	shardstore.SetStateHooks(s, nil, nil)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	if !ran.Load() {
		t.Fatal("the hook did not append and snapshot between the reads")
	}
	if len(states) != 1 || states[0].Version != 3 || states[0].Snapshot != nil || states[0].Tail.From != 1 || states[0].Tail.To != 3 {
		t.Fatalf("states %+v, want one at version 3 from the events 1..3, no snapshot", states)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("events %v, want 1 2 3", got)
	}

	// Without the seam the same load finds the snapshot at the head.
	states, got = nil, nil
	if err := s.ReadState(ctx, stream, func(st log.State) error {
		states = append(states, st)
		return nil
	}, func(e *log.RecordedEvent) error {
		got = append(got, e.Version)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Version != 5 || states[0].Snapshot == nil || states[0].Snapshot.Version != 5 || len(got) != 0 {
		t.Fatalf("states %+v, events %v: want the snapshot at the head 5 and no events", states, got)
	}
}
