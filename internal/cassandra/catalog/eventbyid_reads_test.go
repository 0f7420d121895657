package catalog_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// indexReads counts the reads of each id index table a session sends
// (a gocql.QueryObserver: the driver's own count).
type indexReads struct {
	mu          sync.Mutex
	commits, ix int // event_id_commits, event_index
}

func (r *indexReads) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.Contains(q.Statement, "FROM event_id_commits"):
		r.commits++
	case strings.Contains(q.Statement, "FROM event_index"):
		r.ix++
	}
}

func (r *indexReads) take() (commits, ix int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	commits, ix = r.commits, r.ix
	r.commits, r.ix = 0, 0
	return commits, ix
}

// TestEventByIDReads counts the index reads of lookups by id on an
// 8-shard keyspace. The lookup read every partition of both tables
// (event_id_commits and event_index) and sorted every hit: a UUIDv4 id
// found in the newest minutes cost about 1,000 reads, a UUIDv7 one 128.
// Now it reads the minutes newest first, in waves, and stops at the
// first wave with a visible event; and event_index only where it may
// hold the id: never on a keyspace created at 0008 or later, for ids
// that are not UUIDv7 not once its rows have expired after 0008 was
// applied (catalog.OldIndex, read as a store does when it opens).
func TestEventByIDReads(t *testing.T) {
	const shards = 8
	o := cassandratest.Options(t)
	o.Shards = shards
	if _, err := cassandratest.Migrate(t, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cassandratest.DropBounded(t, o) })
	reads := &indexReads{}
	cluster := gocql.NewCluster(o.Hosts...)
	cluster.Keyspace = o.Keyspace
	cluster.Consistency = gocql.Quorum
	cluster.Timeout = 30 * time.Second
	cluster.QueryObserver = reads
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	v4, v4Older, v7 := uuid.New(), uuid.New(), uuid.Must(uuid.NewV7())
	type logRow struct {
		shard int
		seq   int64
	}
	// Log rows: v4 in a-1 (shard 3, seq 5) and, 10 minutes earlier, in
	// b-1 (shard 1, seq 2); v4Older only 10 minutes ago; v7 in c-1.
	rows := map[logRow][]catalog.Location{
		{3, 5}: {{Stream: "a-1", Version: 1, Time: now}},
		{1, 2}: {{Stream: "b-1", Version: 1, Time: now.Add(-10 * time.Minute)}, {Stream: "older-1", Version: 1, Time: now.Add(-10 * time.Minute)}},
		{6, 9}: {{Stream: "c-1", Version: 1, Time: now}},
	}
	ids := map[log.StreamID]uuid.UUID{"a-1": v4, "b-1": v4, "older-1": v4Older, "c-1": v7}
	newCatalog := func(old catalog.OldIndex) *catalog.Catalog {
		return catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: shards, OldIndex: old,
			Locate: func(_ context.Context, shard int, seq int64, id uuid.UUID) ([]catalog.Location, error) {
				var out []catalog.Location
				for _, l := range rows[logRow{shard, seq}] {
					if ids[l.Stream] == id {
						out = append(out, l)
					}
				}
				return out, nil
			},
			ReadEvent: func(_ context.Context, st log.StreamID, v int64, id uuid.UUID) (log.RecordedEvent, bool, error) {
				if ids[st] != id || v != 1 {
					return log.RecordedEvent{}, false, nil
				}
				return log.RecordedEvent{Stream: st, Version: 1, ID: id}, true, nil
			}})
	}
	old, err := catalog.ReadOldIndex(ctx, session)
	if err != nil || !old.Unwritten {
		t.Fatalf("ReadOldIndex of a keyspace created now: %+v, %v; want Unwritten", old, err)
	}
	c := newCatalog(old)
	one := func(seq int64, at time.Time, id uuid.UUID, st log.StreamID) streams.Pending {
		return pend(seq, at, record.Chunk{Stream: st, FirstVersion: 1, OpensBucket: true,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: id, Type: "t", Data: []byte("1")}}}}})
	}
	ago := now.Add(-10 * time.Minute)
	for shard, ps := range map[int][]streams.Pending{
		3: {one(5, now, v4, "a-1")},
		1: {one(2, ago, v4, "b-1"), one(2, ago, v4Older, "older-1")},
		6: {one(9, now, v7, "c-1")},
	} {
		if err := c.Write(ctx, shard, ps); err != nil {
			t.Fatal(err)
		}
	}
	window := int(catalog.UntimedWindow.Minutes()) + 2 // untimedMinutes: the hour, and a minute ahead
	only := func(st log.StreamID) func(log.StreamID) bool { return func(s log.StreamID) bool { return s == st } }

	type lookup struct {
		name       string
		id         uuid.UUID
		visible    func(log.StreamID) bool
		want       log.StreamID     // "": not found
		commits    func(n int) bool // reads of event_id_commits
		commitsSay string           //
		ix         int              // reads of event_index
	}
	check := func(t *testing.T, c *catalog.Catalog, l lookup) {
		t.Helper()
		reads.take()
		e, err := c.EventByID(ctx, l.id, l.visible)
		switch {
		case l.want == "" && err != log.ErrEventNotFound:
			t.Errorf("%s: EventByID: %s, %v; want ErrEventNotFound", l.name, e.Stream, err)
		case l.want != "" && (err != nil || e.Stream != l.want):
			t.Errorf("%s: EventByID: %s, %v; want %s", l.name, e.Stream, err, l.want)
		}
		if commits, ix := reads.take(); !l.commits(commits) || ix != l.ix {
			t.Errorf("%s: %d reads of event_id_commits, %d of event_index; want %s, %d", l.name, commits, ix, l.commitsSay, l.ix)
		}
	}
	atMost := func(n int) func(int) bool { return func(got int) bool { return got <= n } }
	exactly := func(n int) func(int) bool { return func(got int) bool { return got == n } }
	t.Run("Created", func(t *testing.T) {
		for _, l := range []lookup{
			// Found in the first wave (4 minutes of 8 shards), the newest
			// minute first: a-1, not b-1, filed 10 minutes earlier.
			{"V4", v4, nil, "a-1", atMost(32), "at most 32", 0},
			{"V4OlderMinute", v4, only("b-1"), "b-1", atMost(4 * 32), "at most 128", 0},
			{"V4Older", v4Older, nil, "older-1", atMost(4 * 32), "at most 128", 0},
			{"V4Missing", uuid.New(), nil, "", exactly(shards * window), "the window's", 0},
			{"V7", v7, nil, "c-1", exactly(shards * catalog.Slots), "one per shard and slot", 0},
			{"V7Missing", uuid.Must(uuid.NewV7()), nil, "", exactly(shards * catalog.Slots), "one per shard and slot", 0},
		} {
			check(t, c, l)
		}
	})
	// An upgraded keyspace: its layout row has no created_version.
	if err := session.Query(`DELETE created_version FROM keyspace_config WHERE id = 0`).Exec(); err != nil {
		t.Fatal(err)
	}
	t.Run("Upgraded", func(t *testing.T) {
		old, err := catalog.ReadOldIndex(ctx, session)
		if err != nil || old.Unwritten || time.Since(old.Migrated) > 10*time.Minute {
			t.Fatalf("ReadOldIndex: %+v, %v; want when 0008 was applied, minutes ago", old, err)
		}
		c := newCatalog(old)
		for _, l := range []lookup{
			{"V4Missing", uuid.New(), nil, "", exactly(shards * window), "the window's", shards * window},
			{"V7Missing", uuid.Must(uuid.NewV7()), nil, "", exactly(shards * catalog.Slots), "one per shard and slot", shards * catalog.Slots},
		} {
			check(t, c, l)
		}
	})
	// 0008 applied long ago: event_index's rows of ids that are not
	// UUIDv7 have expired, those of UUIDv7 ids never do.
	if err := session.Query(`UPDATE schema_migrations SET applied_at = ? WHERE version = 8`, now.Add(-catalog.DrainMargin-3*time.Hour)).Exec(); err != nil {
		t.Fatal(err)
	}
	t.Run("UpgradedLongAgo", func(t *testing.T) {
		old, err := catalog.ReadOldIndex(ctx, session)
		if err != nil || old.Unwritten || old.Migrated.IsZero() {
			t.Fatalf("ReadOldIndex: %+v, %v", old, err)
		}
		c := newCatalog(old)
		for _, l := range []lookup{
			{"V4", v4, nil, "a-1", atMost(32), "at most 32", 0},
			{"V4Missing", uuid.New(), nil, "", exactly(shards * window), "the window's", 0},
			{"V7Missing", uuid.Must(uuid.NewV7()), nil, "", exactly(shards * catalog.Slots), "one per shard and slot", shards * catalog.Slots},
		} {
			check(t, c, l)
		}
	})
}
