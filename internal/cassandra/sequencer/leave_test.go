package sequencer

import (
	"context"
	"errors"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"
)

// TestLeaveDeletesAgainAtEachTick: a departing instance's instances row
// that is back after Leave deleted it (Leave's delete failed, or a
// heartbeat running beside it wrote the row again) is deleted at its next
// tick. Left, the row stayed live for three lease TTLs, and the others
// went on assigning the instance shards it released, each move waiting
// out a lease (a helper's probe: shards without a serving owner for ~9 s
// of 8 s runs over 4 shards, against ~0.2 s with the row gone).
func TestLeaveDeletesAgainAtEachTick(t *testing.T) {
	o := handoverKeyspace(t, 2)
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s.Close(cctx)
	}()
	live := func() bool {
		t.Helper()
		var id string
		err := cfg.Session.Query(`SELECT id FROM instances WHERE id = ?`, cfg.Instance).WithContext(ctx).Scan(&id)
		if err != nil && !errors.Is(err, gocql.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	if err := s.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	s.Leave(ctx)
	s.background.Wait()
	if live() {
		t.Fatal("the instances row is still there after Leave")
	}
	if err := s.heartbeat(ctx); err != nil { // the row back, as a racing heartbeat writes it
		t.Fatal(err)
	}
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if live() {
		t.Fatal("the instances row of a departing instance outlived its tick")
	}
}
