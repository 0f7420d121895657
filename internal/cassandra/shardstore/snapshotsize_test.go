package shardstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

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
