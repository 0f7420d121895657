package catalog_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

func TestMinute(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 7, 30, 0, time.UTC)
	v7, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	if m, timed := catalog.Minute(v7, at); !timed || m != time.Now().UnixMilli()/60_000 && m != time.Now().UnixMilli()/60_000-1 {
		t.Fatalf("v7: minute %d timed %v", m, timed)
	}
	if m, timed := catalog.Minute(uuid.New(), at); timed || m != at.UnixMilli()/60_000 {
		t.Fatalf("v4: minute %d timed %v", m, timed)
	}
}

// TestWriteAndList writes the index rows of made-up chunks (as the filler
// does) and lists them: paging, the scan cap, visibility, counts, ids.
func TestWriteAndList(t *testing.T) {
	session := migrated(t)
	c := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 2, ScanCap: 5,
		ReadEvent: func(context.Context, log.StreamID, int64, uuid.UUID) (log.RecordedEvent, bool, error) {
			return log.RecordedEvent{}, false, nil
		}})
	ctx := context.Background()
	now := time.Now()
	var (
		ps  []streams.Pending
		all []string
	)
	for i := range 12 {
		st := log.StreamID(fmt.Sprintf("cat%d-%02d", i%2, i))
		all = append(all, string(st))
		ps = append(ps, pend(1, now, record.Chunk{Stream: st, FirstVersion: 1, OpensBucket: true,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("1")}}}}}))
	}
	// A later chunk of a listed stream adds no catalog row.
	ps = append(ps, pend(2, now, record.Chunk{Stream: "cat0-00", FirstVersion: 2,
		Appends: []record.ChunkAppend{{Events: []record.Event{{ID: uuid.New(), Type: "t", Data: []byte("2")}}}}}))
	// A chunk of two appends, UUIDv7 ids and others: each id filed at the
	// commit's log row (seq) with the commit's time, the others in slot 0
	// of the commit minute with a TTL.
	multiChunk := record.Chunk{Stream: "multi-1", FirstVersion: 5, Appends: []record.ChunkAppend{
		{Events: []record.Event{{ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("5")}, {ID: uuid.New(), Type: "t", Data: []byte("6")}}},
		{Events: []record.Event{{ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("7")}, {ID: uuid.New(), Type: "t", Data: []byte("8")}, {ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("9")}}},
	}}
	multi := pend(3, now, multiChunk)
	if err := c.Write(ctx, 1, append(ps, multi)); err != nil {
		t.Fatal(err)
	}
	for _, a := range multiChunk.Appends {
		for _, e := range a.Events {
			m, timed := catalog.Minute(e.ID, now)
			var (
				seq      int64
				at       time.Time
				ttl      *int
				slotsCQL = "(0, 1, 2, 3, 4, 5, 6, 7)"
			)
			if !timed {
				slotsCQL = "(0)"
			}
			err := session.Query(`SELECT seq, time, TTL(time) FROM event_id_commits WHERE shard = 1 AND minute = ? AND slot IN `+slotsCQL+` AND id = ?`, m, [16]byte(e.ID)).Scan(&seq, &at, &ttl)
			if err != nil || seq != 3 || !at.Equal(now.Truncate(time.Millisecond)) || timed != (ttl == nil) {
				t.Fatalf("index row of %s (UUIDv7 %v): seq %d time %v ttl %v, %v; want seq 3 at %v, a TTL only if not UUIDv7", e.ID, timed, seq, at, ttl, err, now)
			}
		}
	}
	if err := c.Write(ctx, 1, ps); err != nil { // idempotent
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b string) int {
		return strings.Compare(log.StreamID(a).Category()+"\x00"+a, log.StreamID(b).Category()+"\x00"+b)
	})
	list := func(q log.StreamQuery) []string {
		var out []string
		for range 50 {
			p, err := c.ListStreams(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Streams {
				out = append(out, string(s.Stream))
			}
			if p.Next == "" {
				return out
			}
			q.After = p.Next
		}
		t.Fatal("no end")
		return nil
	}
	if got := list(log.StreamQuery{Limit: 4}); !slices.Equal(got, all) {
		t.Fatalf("all: %v, want %v", got, all)
	}
	// Only cat1 visible: the scan cap (5 rows) cuts pages short, but the
	// listing still ends with every visible stream, once.
	got := list(log.StreamQuery{Limit: 100, Visible: func(s log.StreamID) bool { return s.Category() == "cat1" }})
	if len(got) != 6 || !slices.IsSorted(got) || got[0] != "cat1-01" {
		t.Fatalf("visible cat1: %v", got)
	}
	cats, err := c.Categories(ctx, log.CategoryQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if want := []log.CategoryCount{{Category: "cat0", Streams: 6, Exact: true}, {Category: "cat1", Streams: 6, Exact: true}}; !slices.Equal(cats.Categories, want) || cats.Next != "" {
		t.Fatalf("categories %v, want %v", cats, want)
	}
	// Every event's id is indexed, in its shard and minute, at its seq.
	for _, p := range ps {
		id := uuid.UUID(p.EventIDs[:16])
		m, _ := catalog.Minute(id, p.Time)
		var seq int64
		if err := session.Query(`SELECT seq FROM event_id_commits WHERE shard = 1 AND minute = ? AND slot IN (0, 1, 2, 3, 4, 5, 6, 7) AND id = ?`, m, [16]byte(id)).Scan(&seq); err != nil || seq != p.Seq {
			t.Fatalf("index row of %s: seq %d %v, want %d", p.Stream, seq, err, p.Seq)
		}
	}
}

// TestCategoryCountAtTheCap: a category of exactly CountCap streams is
// counted exactly; one stream more makes the count a lower bound, CountCap.
func TestCategoryCountAtTheCap(t *testing.T) {
	session := migrated(t)
	c := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 2, CountCap: 3})
	ctx := context.Background()
	now := time.Now()
	var ps []streams.Pending
	for i, st := range []log.StreamID{"at-1", "at-2", "at-3", "over-1", "over-2", "over-3", "over-4", "under-1"} {
		ps = append(ps, pend(int64(i+1), now, record.Chunk{Stream: st, FirstVersion: 1, OpensBucket: true,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("1")}}}}}))
	}
	if err := c.Write(ctx, 0, ps); err != nil {
		t.Fatal(err)
	}
	got, err := c.Categories(ctx, log.CategoryQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []log.CategoryCount{{Category: "at", Streams: 3, Exact: true}, {Category: "over", Streams: 3, Exact: false}, {Category: "under", Streams: 1, Exact: true}}
	if !slices.Equal(got.Categories, want) {
		t.Fatalf("categories %v, want %v", got, want)
	}
}

// TestCategoriesPages: categories come a page at a time, in name order:
// at most limit of them, counted, and a page scans at most ScanCap
// category rows, so a caller that may read few of many gets pages cut
// short whose next resumes the scan; every category it may read is listed
// once, and no other is counted. GET /v1/categories read and counted
// every category row at each call.
func TestCategoriesPages(t *testing.T) {
	session := migrated(t)
	c := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 2, ScanCap: 3})
	ctx := context.Background()
	now := time.Now()
	var (
		ps  []streams.Pending
		all []string
	)
	for i := range 11 {
		cat := fmt.Sprintf("pg%02d", i)
		all = append(all, cat)
		ps = append(ps, pend(int64(i+1), now, record.Chunk{Stream: log.StreamID(cat + "-1"), FirstVersion: 1, OpensBucket: true,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: uuid.Must(uuid.NewV7()), Type: "t", Data: []byte("1")}}}}}))
	}
	if err := c.Write(ctx, 0, ps); err != nil {
		t.Fatal(err)
	}
	list := func(q log.CategoryQuery) (out []string, pages int) {
		for range 50 {
			p, err := c.Categories(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(p.Categories) > q.Limit {
				t.Fatalf("a page of %d categories, limit %d", len(p.Categories), q.Limit)
			}
			for _, cc := range p.Categories {
				if cc.Streams != 1 || !cc.Exact {
					t.Fatalf("%s counted %d (exact %v), want 1", cc.Category, cc.Streams, cc.Exact)
				}
				out = append(out, cc.Category)
			}
			if p.Next == "" {
				return out, pages
			}
			if p.Next <= q.After {
				t.Fatalf("next %q does not move past after %q", p.Next, q.After)
			}
			q.After = p.Next
		}
		t.Fatal("no end")
		return nil, 0
	}
	if got, pages := list(log.CategoryQuery{Limit: 2}); !slices.Equal(got, all) || pages != 6 {
		t.Fatalf("all, 2 a page: %v in %d pages, want %v in 6", got, pages, all)
	}
	// Four of eleven visible: the scan cap (3 rows) cuts pages short.
	visible := func(cat string) bool { return slices.Contains([]string{"pg00", "pg03", "pg06", "pg09"}, cat) }
	got, pages := list(log.CategoryQuery{Limit: 100, Visible: visible})
	if want := []string{"pg00", "pg03", "pg06", "pg09"}; !slices.Equal(got, want) || pages < 4 {
		t.Fatalf("visible: %v in %d pages, want %v in 4 or more", got, pages, want)
	}
	if _, err := c.Categories(ctx, log.CategoryQuery{}); err == nil {
		t.Fatal("a query without limit was answered")
	}
}

// TestIDRowsPerCommit: the ids of one commit that share a partition take
// one statement, whatever the streams; another commit's take another.
func TestIDRowsPerCommit(t *testing.T) {
	c := catalog.New(catalog.Options{Shards: 2})
	at := time.Date(2026, 12, 4, 10, 7, 30, 0, time.UTC)
	var ps []streams.Pending
	for i := range 10 {
		ps = append(ps, pend(int64(1+i/6), at, record.Chunk{Stream: log.StreamID(fmt.Sprintf("s-%d", i)), FirstVersion: 2,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: uuid.New(), Type: "t", Data: []byte("1")}}}}}))
	}
	piggy, rest, _ := c.Rows(0, ps, 100)
	if len(rest) != 0 {
		t.Fatalf("%d groups left over", len(rest))
	}
	var seqs []int64
	ids := 0
	for _, e := range piggy {
		if !strings.Contains(e.Stmt, "event_id_commits") {
			continue
		}
		seqs = append(seqs, e.Args[len(e.Args)-1].(int64))
		ids += len(e.Args[len(e.Args)-2].([][16]byte))
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []int64{1, 2}) || ids != 10 {
		t.Fatalf("id statements for seqs %v holding %d ids, want one for seq 1 and one for 2, 10 ids", seqs, ids)
	}
}

// pend is chunk c of the record committed at seq, at t, as the filler
// holds it.
func pend(seq int64, t time.Time, c record.Chunk) streams.Pending {
	return streams.NewPending(seq, t, &c)
}

// TestEventByIDEveryCommit: an id in several streams, committed apart, in
// one partition and in several, filed in event_id_commits and, by servers
// before it, in event_index (a row naming the log row, and one from
// before 0003 naming the stream and version; one commit in both tables).
// A lookup answers the first event the caller may read by minute, newest
// first, then earliest committed: the id is a UUIDv7, filed under the one
// minute it carries, so the earliest committed; it reads log rows in
// commit order only until one holds such an event. (The catalog is given
// no OldIndex: event_index is read, as in an upgraded keyspace.)
func TestEventByIDEveryCommit(t *testing.T) {
	session := migrated(t)
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	m, _ := catalog.Minute(id, time.Time{})
	now := time.Now().Truncate(time.Millisecond)
	type logRow struct {
		shard int
		seq   int64
	}
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	rows := map[logRow][]catalog.Location{
		{1, 7}:  {{Stream: "a-1", Version: 1, Time: at(1)}},
		{1, 10}: {{Stream: "b-1", Version: 1, Time: at(2)}},
		{0, 4}:  {{Stream: "c-1", Version: 1, Time: at(3)}, {Stream: "c-2", Version: 1, Time: at(3)}},
	}
	events := map[catalog.Location]log.RecordedEvent{{Stream: "old-1", Version: 3}: {Stream: "old-1", Version: 3, ID: id, Time: now}}
	for _, locs := range rows {
		for _, l := range locs {
			events[catalog.Location{Stream: l.Stream, Version: l.Version}] = log.RecordedEvent{Stream: l.Stream, Version: l.Version, ID: id, Time: l.Time}
		}
	}
	var located []logRow
	c := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 2,
		Slot: func() int { return 5 },
		Locate: func(_ context.Context, shard int, seq int64, got uuid.UUID) ([]catalog.Location, error) {
			if got != id {
				t.Errorf("Locate(%s), want %s", got, id)
			}
			located = append(located, logRow{shard, seq})
			return rows[logRow{shard, seq}], nil
		},
		ReadEvent: func(_ context.Context, st log.StreamID, v int64, got uuid.UUID) (log.RecordedEvent, bool, error) {
			e, ok := events[catalog.Location{Stream: st, Version: v}]
			return e, ok && got == id, nil
		}})
	chunk := func(st log.StreamID) record.Chunk {
		return record.Chunk{Stream: st, FirstVersion: 1, OpensBucket: true,
			Appends: []record.ChunkAppend{{Events: []record.Event{{ID: id, Type: "t", Data: []byte("1")}}}}}
	}
	// Commits of this server: b-1 in shard 1, c-1 and c-2 together in
	// shard 0; b-1's in slot 5 of shard 1, where event_index has a-1's.
	if err := c.Write(ctx, 1, []streams.Pending{pend(10, at(2), chunk("b-1"))}); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, 0, []streams.Pending{pend(4, at(3), chunk("c-1")), pend(4, at(3), chunk("c-2"))}); err != nil {
		t.Fatal(err)
	}
	// Rows of older servers: a-1's commit, b-1's again (an ex-owner's
	// fill), and old-1's, before 0003.
	for _, q := range []struct {
		cql  string
		args []any
	}{
		{`UPDATE event_index SET seq = 7 WHERE shard = 1 AND minute = ? AND slot = 5 AND id = ?`, []any{m, [16]byte(id)}},
		{`UPDATE event_index SET seq = 10 WHERE shard = 1 AND minute = ? AND slot = 0 AND id = ?`, []any{m, [16]byte(id)}},
		{`UPDATE event_index SET stream = 'old-1', version = 3 WHERE shard = 0 AND minute = ? AND slot = 6 AND id = ?`, []any{m, [16]byte(id)}},
	} {
		if err := session.Query(q.cql, q.args...).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	only := func(want ...log.StreamID) func(log.StreamID) bool {
		return func(st log.StreamID) bool { return slices.Contains(want, st) }
	}
	for _, tc := range []struct {
		name    string
		visible func(log.StreamID) bool
		want    log.StreamID
		located []logRow
	}{
		{"All", nil, "old-1", []logRow{{1, 7}}},
		{"NotTheOldest", only("a-1", "b-1", "c-1", "c-2"), "a-1", []logRow{{1, 7}}},
		{"ThisServers", only("b-1", "c-1", "c-2"), "b-1", []logRow{{1, 7}, {1, 10}}},
		{"OneCommitInRecordOrder", only("c-2", "c-1"), "c-1", []logRow{{1, 7}, {1, 10}, {0, 4}}},
		{"LaterInOneCommit", only("c-2"), "c-2", []logRow{{1, 7}, {1, 10}, {0, 4}}},
		{"None", only(), "", []logRow{{1, 7}, {1, 10}, {0, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			located = nil
			e, err := c.EventByID(ctx, id, tc.visible)
			if tc.want == "" {
				if err != log.ErrEventNotFound {
					t.Fatalf("EventByID: %s@%d, %v; want ErrEventNotFound", e.Stream, e.Version, err)
				}
			} else if err != nil || e.Stream != tc.want || e.ID != id {
				t.Fatalf("EventByID: %s@%d, %v; want %s", e.Stream, e.Version, err, tc.want)
			}
			// a-1's log row is read first, for its commit time; the
			// others in commit order, until one holds a visible event.
			if !slices.Equal(located, tc.located) {
				t.Fatalf("log rows read %v, want %v", located, tc.located)
			}
		})
	}
}

// migrated makes a keyspace of the current schema, dropped when t ends,
// and returns a session on it.
func migrated(t *testing.T) *gocql.Session {
	t.Helper()
	o := cassandratest.Options(t)
	if _, err := cassandratest.Migrate(t, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cassandratest.DropBounded(t, o) })
	return cassandratest.Session(t, o)
}
