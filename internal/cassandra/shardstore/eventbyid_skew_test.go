package shardstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestEventByIDUnderSkew: an event whose id is not a UUIDv7 is filed in
// the id index under its commit minute, which is its shard's owner's
// clock, or the shard's last commit time when that clock is behind it. A
// lookup searched the hour before the looking instance's clock only, so
// an event appended a moment before was not found when its owner's clock
// was hours off the looking instance's ("OwnerBehind"), nor, after an
// owner whose clock was ahead handed the shard to one with the right
// time, the events either of them appended, even through the instance
// that appended them ("AfterAnOwnerAhead"). A lookup now also searches
// the hour before each shard's log time.
func TestEventByIDUnderSkew(t *testing.T) {
	skewed := func(o shardstore.Options, skew time.Duration) shardstore.Options {
		o.Cassandra.Now = func() time.Time { return time.Now().Add(skew) }
		return o
	}
	appendOne := func(ctx context.Context, t *testing.T, s *shardstore.Store, exp log.ExpectedVersion) uuid.UUID {
		t.Helper()
		id := uuid.New() // a UUIDv4: filed by time, not by its id
		r, err := s.Append(ctx, log.AppendRequest{Stream: "skew-1", Expected: exp,
			Events: []log.ProposedEvent{ev(id, "Tested", `{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("v%d committed at %s; the time is %s", r.FirstVersion, r.Time.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
		readAll(t, s, "skew-1") // its stream, and so its index row, written
		return id
	}
	find := func(ctx context.Context, t *testing.T, s *shardstore.Store, ids ...uuid.UUID) {
		t.Helper()
		for v, id := range ids {
			e, err := s.EventByID(ctx, id, nil)
			if err != nil || e.Stream != "skew-1" || e.Version != int64(v+1) {
				t.Errorf("EventByID of v%d, appended a moment ago: %+v %v", v+1, e, err)
			}
		}
	}
	t.Run("OwnerBehind", func(t *testing.T) {
		o := newKeyspace(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var peers shardstoretest.Peers
		a := open(t, skewed(shardstore.Options{Cassandra: o, Address: "a", FlushRemote: peers.FlushRemote}, -3*time.Hour))
		peers.Add("a", a)
		defer a.Close()
		// b claims nothing (a process stopped, as far as shards go): a
		// reader only, with the right time.
		b := open(t, shardstore.Options{Cassandra: o, Address: "b", FlushRemote: peers.FlushRemote, Paused: func() bool { return true }})
		peers.Add("b", b)
		defer b.Close()
		id := appendOne(ctx, t, a, log.NoStream)
		find(ctx, t, b, id)
	})
	t.Run("AfterAnOwnerAhead", func(t *testing.T) {
		o := newKeyspace(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		a := open(t, skewed(shardstore.Options{Cassandra: o}, 3*time.Hour))
		first := appendOne(ctx, t, a, log.NoStream)
		a.Close() // hands the shard over
		b := open(t, shardstore.Options{Cassandra: o})
		defer b.Close()
		second := appendOne(ctx, t, b, 1) // at a's last commit time
		find(ctx, t, b, first, second)
	})
}

// TestEventByIDAfterAnOwnerChangeAcrossSkew: an owner change between
// clocks hours apart moves a shard's log time on by the difference, and
// an event whose id is not a UUIDv7, filed under its commit minute before
// the change, was then searched for only in the hours after it: looked up
// a moment after its append, it was not found through the new owner when
// that owner's clock was ahead ("ToAnOwnerAhead"), nor through an
// instance with the right time when the old owner's clock was behind
// ("FromAnOwnerBehind").
func TestEventByIDAfterAnOwnerChangeAcrossSkew(t *testing.T) {
	skewed := func(o shardstore.Options, skew time.Duration) shardstore.Options {
		o.Cassandra.Now = func() time.Time { return time.Now().Add(skew) }
		return o
	}
	appendOne := func(ctx context.Context, t *testing.T, s *shardstore.Store) uuid.UUID {
		t.Helper()
		id := uuid.New() // a UUIDv4: filed by time, not by its id
		r, err := s.Append(ctx, log.AppendRequest{Stream: "skew-2", Expected: log.Any,
			Events: []log.ProposedEvent{ev(id, "Tested", `{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("v%d committed at %s; the time is %s", r.FirstVersion, r.Time.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
		readAll(t, s, "skew-2") // its stream, and so its index row, written
		return id
	}
	find := func(ctx context.Context, t *testing.T, s *shardstore.Store, ids ...uuid.UUID) {
		t.Helper()
		for v, id := range ids {
			e, err := s.EventByID(ctx, id, nil)
			if err != nil || e.Stream != "skew-2" || e.Version != int64(v+1) {
				t.Errorf("EventByID of v%d, appended a moment ago: %+v %v", v+1, e, err)
			}
		}
	}
	for _, c := range []struct {
		name         string
		first, later time.Duration // the owners' skews
	}{{"ToAnOwnerAhead", 0, 3 * time.Hour}, {"FromAnOwnerBehind", -3 * time.Hour, 0}} {
		t.Run(c.name, func(t *testing.T) {
			o := newKeyspace(t, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			a := open(t, skewed(shardstore.Options{Cassandra: o}, c.first))
			first := appendOne(ctx, t, a)
			a.Close() // hands the shard over
			b := open(t, skewed(shardstore.Options{Cassandra: o}, c.later))
			defer b.Close()
			second := appendOne(ctx, t, b) // the log's time jumps by the skew
			find(ctx, t, b, first, second)
		})
	}
}
