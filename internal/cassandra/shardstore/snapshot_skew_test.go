package shardstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestSnapshotPutAgainUnderSkew: a snapshot put again at a version that
// has one replaces it (PUT), and the later put wins whatever the clocks
// of the instances it went through. A put was a plain write at the
// instance's clock, so a put through an instance 3 hours ahead beat every
// later put at that version through the others for 3 hours, each of them
// answered 201 and never served.
func TestSnapshotPutAgainUnderSkew(t *testing.T) {
	o := newKeyspace(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var peers shardstoretest.Peers
	ahead := o
	ahead.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	a := open(t, shardstore.Options{Cassandra: ahead, Address: "a", FlushRemote: peers.FlushRemote})
	peers.Add("a", a)
	defer a.Close()
	b := open(t, shardstore.Options{Cassandra: o, Address: "b", FlushRemote: peers.FlushRemote, Paused: func() bool { return true }})
	peers.Add("b", b)
	defer b.Close()
	const stream = "snap-skew-1"
	if _, err := appendN(ctx, a, stream, log.NoStream, 2); err != nil {
		t.Fatal(err)
	}
	for i, put := range []struct {
		s     *shardstore.Store
		state string
	}{{a, `{"n":"first, ahead"}`}, {b, `{"n":"second"}`}, {a, `{"n":"third, ahead"}`}, {b, `{"n":"fourth"}`}} {
		if _, err := put.s.PutSnapshot(ctx, stream, 2, json.RawMessage(put.state)); err != nil {
			t.Fatalf("put %d: %v", i+1, err)
		}
		for _, s := range []*shardstore.Store{a, b} {
			snap, err := s.LatestSnapshot(ctx, stream, 0)
			if err != nil || snap.Version != 2 || string(snap.State) != put.state {
				t.Fatalf("after put %d (%s): latest %d %s %v, want the put's state", i+1, put.state, snap.Version, snap.State, err)
			}
		}
	}
}
