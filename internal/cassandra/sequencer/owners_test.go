package sequencer

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// TestTickKeepsANewerRecordedOwner: a tick whose read of the shards table
// returns a row older (a lower epoch) than the one this instance recorded
// meanwhile (untilOwner's readOwner, a takeover) keeps the newer row, and
// so does a one-row read older than the recorded row. The tick replaced
// it, so forwards went to the older owner until the next read. A read
// naming a higher epoch still replaces it.
func TestTickKeepsANewerRecordedOwner(t *testing.T) {
	o := handoverKeyspace(t, 1)
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	cfg.LeaseTTL = 10 * time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { handoverClose(s) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The table as the tick reads it: "old" holds shard 0 at epoch 1.
	until := time.Now().Add(time.Hour)
	if err := cfg.Session.Query(`INSERT INTO shards (shard, owner, address, epoch, lease_until, segment, schema_version) VALUES (0, 'old', 'old', 1, ?, 0, ?)`,
		until, cassandra.LatestSchemaVersion()).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	// Recorded since: "new" took it over at epoch 2.
	s.setOwner(owner{Shard: 0, Owner: "new", Address: "new", Epoch: 2, LeaseUntil: until, exists: true})
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ownerOf(0); got.Owner != "new" || got.Epoch != 2 {
		t.Fatalf("after a tick that read epoch 1: owner %q at epoch %d, want new at 2", got.Owner, got.Epoch)
	}
	if n := len(s.Owned()); n != 0 {
		t.Fatalf("owns %d shards, want none (the shard is held)", n)
	}

	stale, err := s.readOwner(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.setOwner(stale)
	if got, _ := s.ownerOf(0); got.Owner != "new" || got.Epoch != 2 {
		t.Fatalf("after recording a read of epoch 1: owner %q at epoch %d, want new at 2", got.Owner, got.Epoch)
	}

	if err := cfg.Session.Query(`UPDATE shards SET owner = 'newest', address = 'newest', epoch = 3 WHERE shard = 0`).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ownerOf(0); got.Owner != "newest" || got.Epoch != 3 {
		t.Fatalf("after a tick that read epoch 3: owner %q at epoch %d, want newest at 3", got.Owner, got.Epoch)
	}

	// A read that finds no row (the keyspace made again under a running
	// instance, a row deleted by hand) replaces the kept one: kept, the
	// shard would never be claimed (a claim is conditional on its epoch).
	if err := cfg.Session.Query(`DELETE FROM shards WHERE shard = 0`).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	gone, err := s.readOwner(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.setOwner(gone)
	if got, _ := s.ownerOf(0); got.exists || got.Epoch != 0 {
		t.Fatalf("after a read that found no row: owner %q at epoch %d, want none", got.Owner, got.Epoch)
	}
}
