package streams_test

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestLowIDsInTheStaticRow: looking up, or loading, the ids of a stream's
// first versions reads its partition's static row, not its chunk rows (a
// server whose heads could no longer hold every id read up to 1,024 rows
// an append, and fell to a third of its rate: docs/benchmarks.md, Session
// 17). A partition opened before the static row, whose chunk rows list
// their ids (or, before that, only hold them in their bodies), is read
// both ways, with what was written to it since.
func TestLowIDsInTheStaticRow(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	var rows, queries atomic.Int64
	session := observedSession(t, o, func(q gocql.ObservedQuery) {
		if strings.Contains(q.Statement, "FROM stream_events") {
			rows.Add(int64(q.Rows))
			queries.Add(1)
		}
	})
	s := streams.New(session, 50, time.Hour)
	ctx := context.Background()
	idOf := func(stream log.StreamID) func(int64) uuid.UUID {
		return func(v int64) uuid.UUID {
			var id uuid.UUID
			copy(id[:], stream)
			binary.BigEndian.PutUint64(id[8:], uint64(v))
			return id
		}
	}
	sizes := make([]int, 300)
	for i := range sizes {
		sizes[i] = 1 + i%3
	}
	t0 := time.Now().Truncate(time.Millisecond)

	// Written by this version: runs and single chunks.
	stream := log.StreamID("low-1")
	cs := chunksOf(stream, t0, 1, 1, sizes, idOf(stream))
	last := cs[len(cs)-1].LastVersion
	if err := s.WriteStream(ctx, cs[:100], nil); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < len(cs); i++ {
		if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]int64{{150}, {1, last}, {2, 5, 77, 200, 350, last}} {
		ids := []uuid.UUID{uuid.New()} // never written
		for _, v := range want {
			ids = append(ids, idOf(stream)(v))
		}
		rows.Store(0)
		queries.Store(0)
		found, _, err := s.LookupIDs(ctx, stream, []int64{0, 1}, last, ids, false)
		if err != nil || len(found) != len(want) {
			t.Fatalf("look up versions %v: found %v, %v", want, found, err)
		}
		for _, v := range want {
			if found[idOf(stream)(v)] != v {
				t.Fatalf("look up versions %v: found %v", want, found)
			}
		}
		if n, q := rows.Load(), queries.Load(); n > 1 || q > 1 {
			t.Fatalf("look up of %d ids read %d rows in %d queries", len(ids), n, q)
		}
	}
	rows.Store(0)
	all, _, complete, err := s.IDs(ctx, stream, []int64{0}, last, 4096)
	if err != nil || !complete || int64(len(all)) != last {
		t.Fatalf("ids: %d of %d, complete %v, %v", len(all), last, complete, err)
	}
	for v := int64(1); v <= last; v++ {
		if all[idOf(stream)(v)] != v {
			t.Fatalf("id of version %d at %d", v, all[idOf(stream)(v)])
		}
	}
	if n := rows.Load(); n > 1 {
		t.Fatalf("loading %d ids read %d rows", len(all), n)
	}

	// A partition opened before the static row: its first chunk holds
	// its ids only in its body (before the ids column), the next 19 list
	// them in their ids column; this version writes the rest.
	stream = "low-2"
	cs = chunksOf(stream, t0, 1, 1, sizes[:40], idOf(stream))
	for i, p := range cs[:20] {
		var ids any
		if i > 0 {
			ids = p.IDs
		}
		err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record, ids) VALUES (?, 0, ?, ?, ?, ?, ?, ?)`,
			string(stream), p.LastVersion, p.FirstVersion, p.Time, p.Seq, p.Body, ids).Exec()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteStream(ctx, cs[20:], nil); err != nil {
		t.Fatal(err)
	}
	last = cs[len(cs)-1].LastVersion
	for _, want := range [][]int64{{1}, {cs[5].FirstVersion}, {cs[30].LastVersion}, {1, cs[10].LastVersion, cs[25].FirstVersion, last, cs[1].FirstVersion}} {
		ids := []uuid.UUID{uuid.New()}
		for _, v := range want {
			ids = append(ids, idOf(stream)(v))
		}
		found, _, err := s.LookupIDs(ctx, stream, []int64{0}, last, ids, false)
		if err != nil || len(found) != len(want) {
			t.Fatalf("%s: look up versions %v: found %v, %v", stream, want, found, err)
		}
		for _, v := range want {
			if found[idOf(stream)(v)] != v {
				t.Fatalf("%s: look up versions %v: found %v", stream, want, found)
			}
		}
	}
	all, _, complete, err = s.IDs(ctx, stream, []int64{0}, last, 4096)
	if err != nil || !complete || int64(len(all)) != last {
		t.Fatalf("%s: ids: %d of %d, complete %v, %v", stream, len(all), last, complete, err)
	}

	// Older still: a stream whose chunks past version 64 have stream_ids
	// rows (before migration 0004 the limit was 64), then rows of this
	// version: a lookup reads stream_ids though the stream is short.
	stream = "low-3"
	threes := make([]int, 30)
	for i := range threes {
		threes[i] = 3
	}
	cs = chunksOf(stream, t0, 1, 1, threes, idOf(stream))
	for _, p := range cs[:25] {
		err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record) VALUES (?, 0, ?, ?, ?, ?, ?)`,
			string(stream), p.LastVersion, p.FirstVersion, p.Time, p.Seq, p.Body).Exec()
		if err != nil {
			t.Fatal(err)
		}
		if p.LastVersion > 64 {
			var ids [][16]byte
			p.ClientIDs(func(id uuid.UUID, _ int64) { ids = append(ids, id) })
			err := session.Query(`UPDATE stream_ids USING TTL 3600 SET version = ? WHERE stream = ? AND bucket = 0 AND id IN ?`, p.FirstVersion, string(stream), ids).Exec()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.WriteStream(ctx, cs[25:], nil); err != nil {
		t.Fatal(err)
	}
	last = cs[len(cs)-1].LastVersion
	for _, v := range []int64{2, 68, 74, 80} {
		found, _, err := s.LookupIDs(ctx, stream, []int64{0}, last, []uuid.UUID{idOf(stream)(v)}, false)
		if err != nil || len(found) != 1 || found[idOf(stream)(v)] < chunkFirst(cs, v) || found[idOf(stream)(v)] > v {
			t.Fatalf("%s: look up version %d: %v, %v", stream, v, found, err)
		}
	}
	if all, _, complete, err := s.IDs(ctx, stream, []int64{0}, last, 4096); err != nil || !complete || int64(len(all)) != last {
		t.Fatalf("%s: ids: %d of %d, complete %v, %v", stream, len(all), last, complete, err)
	}

	// A row that listed its ids, overwritten at its key by a longer run of
	// this version (a new owner's): the run's first version with the old
	// row's id list must not place its ids.
	stream = "low-4"
	cs = chunksOf(stream, t0, 1, 1, []int{1, 1, 1, 1, 1}, idOf(stream))
	for _, p := range cs {
		err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record, ids) VALUES (?, 0, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
			string(stream), p.LastVersion, p.FirstVersion, p.Time, p.Seq, p.Body, p.IDs, p.Time.UnixMicro()+1).Exec()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteStream(ctx, cs[2:], nil); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 5; v++ {
		found, _, err := s.LookupIDs(ctx, stream, []int64{0}, 5, []uuid.UUID{idOf(stream)(v)}, false)
		if err != nil || found[idOf(stream)(v)] != v {
			t.Fatalf("%s: look up version %d: %v, %v", stream, v, found, err)
		}
	}

	// A bucket that opens past LowVersions: its ids are stream_ids rows,
	// and its static row says its chunk rows list none.
	stream = "low-5"
	cs = chunksOf(stream, t0, 1, 2001, sizes[:10], idOf(stream))
	if err := s.WriteStream(ctx, cs, nil); err != nil {
		t.Fatal(err)
	}
	last = cs[len(cs)-1].LastVersion
	queries.Store(0)
	found, _, err := s.LookupIDs(ctx, stream, []int64{0}, last, []uuid.UUID{idOf(stream)(2001), idOf(stream)(last), uuid.New()}, false)
	if err != nil || len(found) != 2 || found[idOf(stream)(2001)] != 2001 || found[idOf(stream)(last)] != cs[len(cs)-1].FirstVersion {
		t.Fatalf("%s: look up: %v, %v", stream, found, err)
	}
	if q := queries.Load(); q != 1 {
		t.Fatalf("%s: look up read stream_events in %d queries", stream, q)
	}
}

// TestLowIDs: LowIDs returns a stream's ids of its first LowVersions and
// nothing past them, from the static row and from a partition's older
// chunk rows alike; a lookup told that none of its ids is low (noLow)
// reads stream_ids alone, so a low id is then not found.
func TestLowIDs(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	var queries atomic.Int64
	session := observedSession(t, o, func(q gocql.ObservedQuery) {
		if strings.Contains(q.Statement, "FROM stream_events") {
			queries.Add(1)
		}
	})
	s := streams.New(session, 50, time.Hour)
	ctx := context.Background()
	idOf := func(v int64) uuid.UUID {
		var id uuid.UUID
		copy(id[:], "lowids")
		binary.BigEndian.PutUint64(id[8:], uint64(v))
		return id
	}
	fours := make([]int, 275) // versions 1..1,100; a chunk ends at LowVersions
	for i := range fours {
		fours[i] = 4
	}
	cs := chunksOf("lows-1", time.Now().Truncate(time.Millisecond), 1, 1, fours, idOf)
	// The first ten chunks as a partition from before the static row
	// wrote them: their ids in their ids column.
	for _, p := range cs[:10] {
		err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record, ids) VALUES ('lows-1', 0, ?, ?, ?, ?, ?, ?)`,
			p.LastVersion, p.FirstVersion, p.Time, p.Seq, p.Body, p.IDs).Exec()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 10; i < len(cs); i += 50 {
		if err := s.WriteStream(ctx, cs[i:min(i+50, len(cs))], nil); err != nil {
			t.Fatal(err)
		}
	}
	low, err := s.LowIDs(ctx, "lows-1", []int64{0})
	if err != nil || len(low) != streams.LowVersions {
		t.Fatalf("low ids: %d, %v; want %d", len(low), err, streams.LowVersions)
	}
	for v := int64(1); v <= streams.LowVersions; v++ {
		if got, ok := low[idOf(v)]; !ok || got < chunkFirst(cs, v) || got > v {
			t.Fatalf("low id of version %d at %d (%v)", v, got, ok)
		}
	}
	queries.Store(0)
	found, _, err := s.LookupIDs(ctx, "lows-1", []int64{0}, 1100, []uuid.UUID{idOf(3), idOf(1025), idOf(1100), uuid.New()}, true)
	if err != nil || len(found) != 2 || found[idOf(1025)] != 1025 || found[idOf(1100)] != 1097 {
		t.Fatalf("look up past the low ids: %v, %v", found, err)
	}
	if q := queries.Load(); q != 0 {
		t.Fatalf("a lookup without low ids read stream_events in %d queries", q)
	}
}
