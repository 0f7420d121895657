package shardstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestSnapshotBlobOverTheMutationLimit: with --max-snapshot-bytes set past
// what one Cassandra mutation holds (half a commit log segment, 16 MiB by
// default), a state within the limit that does not compress below it was
// sent to Cassandra, which refused it: the client got a storage error
// (503 unavailable, which invites a retry that fails the same way) for a
// snapshot that can never be stored. The store checks the stored size
// before writing (internal/snapshot/doc.go says it does): 413
// snapshot_too_large.
func TestSnapshotBlobOverTheMutationLimit(t *testing.T) {
	o := newKeyspace(t, 1)
	o.Limits.MaxSnapshotBytes = 32 << 20
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	const stream = "snap-big-1"
	if _, err := appendN(ctx, s, stream, log.NoStream, 1); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 18<<20)
	rand.Read(raw)
	state, _ := json.Marshal(base64.StdEncoding.EncodeToString(raw)) // 24 MiB that compress to about 18
	_, err := s.PutSnapshot(ctx, stream, 1, state)
	var ve *log.ValidationError
	if !errors.As(err, &ve) || ve.Code != log.CodeSnapshotTooLarge {
		t.Fatalf("put a %d-byte state that does not compress below Cassandra's mutation limit: %v, want %s", len(state), err, log.CodeSnapshotTooLarge)
	}
	if _, err := s.LatestSnapshot(ctx, stream, 0); !errors.Is(err, log.ErrSnapshotNotFound) {
		t.Fatalf("latest snapshot: %v, want none", err)
	}
}

// TestSnapshotOverALoweredLimit: a snapshot stored under a higher
// --max-snapshot-bytes than the server now runs with is intact, but the
// codec refuses to decode it past the limit. That refusal was reported as
// a corrupt snapshot: every state load of the stream was a 500
// snapshot_corrupt, and an application that snapshots from loaded states
// (examples/users) could never store a newer one, so the aggregate stayed
// unloadable. Such a snapshot is now skipped, as if absent: the newest one
// within the limit below it serves, or the events from version 1.
func TestSnapshotOverALoweredLimit(t *testing.T) {
	o := newKeyspace(t, 1)
	o.Limits.MaxSnapshotBytes = 64 << 10
	ctx := context.Background()
	big, _ := json.Marshal(strings.Repeat("x", 40<<10))
	{
		s := open(t, shardstore.Options{Cassandra: o})
		for _, stream := range []string{"lowered-1", "lowered-2"} {
			if _, err := appendN(ctx, s, stream, log.NoStream, 3); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutSnapshot(ctx, log.StreamID(stream), 2, big); err != nil {
				t.Fatal(err)
			}
		}
		// lowered-2 has a small snapshot below the big one.
		if _, err := s.PutSnapshot(ctx, "lowered-2", 1, json.RawMessage(`{"small":1}`)); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	o.Limits.MaxSnapshotBytes = 16 << 10
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	load := func(stream string) (log.State, []int64) {
		t.Helper()
		var (
			st  log.State
			got []int64
		)
		err := log.ReadState(ctx, s, log.StreamID(stream), 0, func(x log.State) error { st = x; return nil }, func(e *log.RecordedEvent) error {
			got = append(got, e.Version)
			return nil
		})
		if err != nil {
			t.Fatalf("state of %s with a snapshot over the limit: %v", stream, err)
		}
		return st, got
	}

	if _, err := s.LatestSnapshot(ctx, "lowered-1", 0); !errors.Is(err, log.ErrSnapshotNotFound) {
		t.Fatalf("latest snapshot over the limit: %v, want none", err)
	}
	if st, got := load("lowered-1"); st.Version != 3 || st.Snapshot != nil || !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("state %+v events %v, want version 3 from the events 1..3", st, got)
	}
	if _, err := log.LoadStateAt(ctx, s, "lowered-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("state at a time, with a snapshot over the limit: %v", err)
	}
	if info, err := s.Info(ctx, "lowered-1"); err != nil || info.LatestSnapshot != 0 {
		t.Fatalf("info %+v %v, want no snapshot", info, err)
	}

	if snap, err := s.LatestSnapshot(ctx, "lowered-2", 0); err != nil || snap.Version != 1 || string(snap.State) != `{"small":1}` {
		t.Fatalf("latest snapshot of lowered-2: %+v %v, want the one at 1", snap.SnapshotInfo, err)
	}
	if st, got := load("lowered-2"); st.Version != 3 || st.Snapshot == nil || st.Snapshot.Version != 1 || !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("state %+v events %v, want the snapshot at 1 and the events 2..3", st, got)
	}

	// A snapshot within the limit, put now, serves again.
	if _, err := s.PutSnapshot(ctx, "lowered-1", 3, json.RawMessage(`{"small":3}`)); err != nil {
		t.Fatal(err)
	}
	if st, got := load("lowered-1"); st.Snapshot == nil || st.Snapshot.Version != 3 || len(got) != 0 {
		t.Fatalf("state %+v events %v, want the snapshot at 3", st, got)
	}
}
