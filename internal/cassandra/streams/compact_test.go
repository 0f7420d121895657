package streams_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestCompactBlocks writes a stream's 1-event chunks as the filler does
// (a row each, or runs of ten), compacts it, and reads it back every way:
// each complete block becomes one row, every version is read once with
// its own commit time, time travel and id lookups find versions inside
// the blocks, and rows written after the compaction (a paused ex-owner's
// run reaching back across a block boundary, a catch-up a chunk at a
// time) change nothing read. A block with a gap before it, or not yet
// complete, is left alone.
func TestCompactBlocks(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 50, time.Hour) // pages of 50 rows: blocks span pages
	ctx := context.Background()
	const n = 700 // blocks 0 and 1 complete, 2 not
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "compact-%d", v)) }
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, layout := range []string{"rows", "runs-of-10", "run-then-rows"} {
		t.Run(layout, func(t *testing.T) {
			stream := log.StreamID("compact-" + layout)
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 1
			}
			cs := chunksOf(stream, t0, 1, 1, sizes, idOf)
			// rows: a row a chunk, chunk 100 (version 101) written last:
			// until then block 0 has a gap and nothing is compacted.
			// runs-of-10: an owner's tail runs. run-then-rows: versions
			// 1-250 in one run (block 0 is one row already and stays as it
			// is), 251-260 in another, reaching back from block 1 into
			// block 0, which must outlive block 1's compaction: it alone
			// holds 251-256.
			var ws [][]streams.Pending
			switch layout {
			case "rows":
				for i := range n {
					if i != 100 {
						ws = append(ws, cs[i:i+1])
					}
				}
			case "runs-of-10":
				for i := 0; i < n; i += 10 {
					ws = append(ws, cs[i:i+10])
				}
			case "run-then-rows":
				ws = append(ws, cs[:250], cs[250:260])
				for i := 260; i < n; i++ {
					ws = append(ws, cs[i:i+1])
				}
			}
			for _, w := range ws {
				if err := s.WriteStream(ctx, w, nil); err != nil {
					t.Fatal(err)
				}
			}
			if layout == "rows" {
				if k, err := s.Compact(ctx, stream, 0, 1, n); err != nil || k != 0 {
					t.Fatalf("with version 101 unwritten: compacted %d blocks, %v", k, err)
				}
				if err := s.WriteStream(ctx, cs[100:101], nil); err != nil {
					t.Fatal(err)
				}
				// Complete now, but both blocks end before version 513.
				if k, err := s.Compact(ctx, stream, 0, 513, n); err != nil || k != 0 {
					t.Fatalf("blocks ending before from: compacted %d, %v", k, err)
				}
			}
			before, bytesBefore := rowCount(t, session, stream), storedBytes(t, session, stream, 512)
			blocks, want := 2, 2+(n-512)
			// Blocks 0 and 1 (versions 1-256, 257-512) as one row each; the
			// 188 events of block 2 as they were, and the runs that reach
			// back across a block's start kept.
			switch layout {
			case "runs-of-10":
				want = 2 + 1 + (n-510)/10
			case "run-then-rows":
				blocks, want = 1, 2+1+(n-512)
			}
			if k, err := s.Compact(ctx, stream, 0, 1, n); err != nil || k != blocks {
				t.Fatalf("compacted %d blocks, %v; want %d", k, err, blocks)
			}
			after := rowCount(t, session, stream)
			if after != want {
				t.Fatalf("%d rows before, %d after compaction, want %d", before, after, want)
			}
			if k, err := s.Compact(ctx, stream, 0, 1, n); err != nil || k != 0 {
				t.Fatalf("compacting again: %d blocks, %v", k, err)
			}
			// A block's bodies are compressed together: its events' ids are
			// random, the rest repeats.
			got := storedBytes(t, session, stream, 512)
			t.Logf("versions 1-512 in %d bytes, %d before", got, bytesBefore)
			if layout == "rows" && got*10 > bytesBefore*8 {
				t.Fatalf("blocks 0 and 1 take %d bytes, their rows took %d: want under 0.8 of it", got, bytesBefore)
			}
			checkStream(t, s, stream, cs, idOf)

			// Written after the compaction: a run of chunks 250-260 (an
			// ex-owner's tail, reaching back across a block boundary) and a
			// catch-up of chunks 200-300 a row each. Reads are unchanged.
			if err := s.WriteStream(ctx, cs[249:260], nil); err != nil {
				t.Fatal(err)
			}
			for i := 199; i < 300; i++ {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			checkStream(t, s, stream, cs, idOf)
		})
	}

	// Two compactors at once, one of them after a retry: the same rows.
	stream := log.StreamID("compact-twice")
	sizes := make([]int, 600)
	for i := range sizes {
		sizes[i] = 1 + i%3 // chunks of 1-3 events: blocks end inside a chunk
	}
	cs := chunksOf(stream, t0, 1, 1, sizes, idOf)
	for i := range cs {
		if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	last := cs[len(cs)-1].LastVersion
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := s.Compact(ctx, stream, 0, 1, last); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if k, err := s.Compact(ctx, stream, 0, 1, last); err != nil || k != 0 {
		t.Fatalf("after three compactors: %d more blocks, %v", k, err)
	}
	if got, full := rowCount(t, session, stream), int(last/streams.BlockEvents); got > len(cs)-full*100 {
		t.Fatalf("%d rows left of %d chunks", got, len(cs))
	}
	checkStream(t, s, stream, cs, idOf)
}

// checkStream reads stream back every way and checks each version is
// there once, in order, with its data and commit time, and findable by
// time and by id.
func checkStream(t *testing.T, s *streams.Store, stream log.StreamID, cs []streams.Pending, idOf func(int64) uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	last := cs[len(cs)-1].LastVersion
	all := seqTo(1, last)
	vs, ts := readAll(t, s, stream, log.ReadRange{})
	if !slices.Equal(vs, all) {
		t.Fatalf("forward read: %d versions, want %d (%v…)", len(vs), len(all), vs[:min(len(vs), 20)])
	}
	for i, v := range vs {
		if want := chunkTime(cs, v); !ts[i].Equal(want) {
			t.Fatalf("version %d at %v, want its chunk's commit time %v", v, ts[i], want)
		}
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{Backward: true})
	if !slices.Equal(vs, reverse(slices.Clone(all))) {
		t.Fatalf("backward read: %d versions", len(vs))
	}
	for _, r := range []log.ReadRange{
		{From: 250, To: 260}, {From: 250, To: 260, Backward: true},
		{From: 1, To: 256}, {From: 256, To: 257}, {From: 256, To: 257, Backward: true},
		{From: 300, To: 520, Backward: true, Limit: 50}, {From: 500, To: 0, Limit: 30},
	} {
		vs, _ := readAll(t, s, stream, r)
		to := r.To
		if to == 0 {
			to = last
		}
		want := seqTo(r.From, to)
		if r.Backward {
			want = reverse(want)
		}
		if r.Limit > 0 {
			want = want[:r.Limit]
		}
		if !slices.Equal(vs, want) {
			t.Fatalf("read %+v: %v", r, vs)
		}
	}
	for i := 0; i < len(cs); i += 37 {
		v, err := s.VersionAt(ctx, stream, cs[i].Time.Add(500*time.Millisecond))
		if err != nil || v != cs[i].LastVersion {
			t.Fatalf("version at chunk %d's time: %d, %v; want %d", i, v, err, cs[i].LastVersion)
		}
	}
	ids, _, _, err := s.IDs(ctx, stream, []int64{0}, last, int(last)+1)
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= last; v++ {
		if got := ids[idOf(v)]; got > v || got < chunkFirst(cs, v) {
			t.Fatalf("id of %d recorded at %d", v, got)
		}
	}
}

// rowCount is how many rows stream's bucket 0 has.
func rowCount(t *testing.T, session *gocql.Session, stream log.StreamID) int {
	t.Helper()
	var n int
	if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, string(stream)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedBytes is the bytes of the bodies of stream's rows in bucket 0
// ending at or before version upTo.
func storedBytes(t *testing.T, session *gocql.Session, stream log.StreamID, upTo int64) int {
	t.Helper()
	iter := session.Query(`SELECT record FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version <= ?`, string(stream), upTo).Iter()
	var (
		body []byte
		n    int
	)
	for iter.Scan(&body) {
		n += len(body)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReadsRacingCompaction compacts a stream's blocks in the middle of a
// read, between two of its queries (a query observer runs Compact once
// the chosen query returns): a read made of several queries may have
// passed a block's end, where its run is written, while the rows it
// replaces, which it has still to read, are deleted. Every read still
// sends each version of its range once, in order.
func TestReadsRacingCompaction(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	w := streams.New(cassandratest.Session(t, o), 50, time.Hour)
	ctx := context.Background()
	const n = 600
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "race-%d", v)) }
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

	var (
		armed   atomic.Bool
		match   string
		atQuery int
		queries atomic.Int64
		stream  log.StreamID
	)
	// The reader pages 10 rows at a time, so that a backward read of 600
	// rows is 60 queries.
	r := streams.New(observedSession(t, o, func(q gocql.ObservedQuery) {
		if !armed.Load() || !strings.Contains(q.Statement, match) || queries.Add(1) < int64(atQuery) {
			return
		}
		armed.Store(false)
		if k, err := w.Compact(ctx, stream, 0, 1, n); err != nil || k != 2 {
			t.Errorf("compaction in the read: %d blocks, %v", k, err)
		}
	}), 10, time.Hour)
	const rowsFrom = "SELECT first_version, last_version FROM" // rowHolding
	for i, c := range []struct {
		what    string
		match   string
		atQuery int
		rng     log.ReadRange
	}{
		{"bounded forward", rowsFrom, 1, log.ReadRange{From: 250, To: 300}},
		{"bounded backward", rowsFrom, 1, log.ReadRange{From: 250, To: 300, Backward: true}},
		{"backward, paged past the block's end", "ORDER BY last_version DESC", 12, log.ReadRange{Backward: true}},
		{"bounded backward, paged", "ORDER BY last_version DESC", 3, log.ReadRange{From: 200, To: 300, Backward: true}},
		{"retry check", rowsFrom, 1, log.ReadRange{From: 280}},
	} {
		t.Run(c.what, func(t *testing.T) {
			stream = log.StreamID(fmt.Sprintf("race-%d", i))
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 1
			}
			for _, p := range chunksOf(stream, t0, 1, 1, sizes, idOf) {
				if err := w.WriteStream(ctx, []streams.Pending{p}, nil); err != nil {
					t.Fatal(err)
				}
			}
			match, atQuery = c.match, c.atQuery
			queries.Store(0)
			armed.Store(true)
			c.rng.Stream = stream
			if c.what == "retry check" {
				// An append retried: its event is found where its id is
				// recorded, inside a block being rewritten.
				v := c.rng.From
				req := &log.AppendRequest{Stream: stream, Expected: log.Any, Events: []log.ProposedEvent{
					{ID: idOf(v), ClientID: true, Type: "t", Data: fmt.Appendf(nil, `{"v":%d}`, v)}}}
				m, err := r.MatchAppend(ctx, req, n, []int64{0}, nil)
				if err != nil || !m.Duplicate || m.FirstVersion != v || m.Stored != 1 {
					t.Fatalf("retry of version %d: %+v, %v; want a duplicate", v, m, err)
				}
				return
			}
			vs, _ := readAll(t, r, stream, c.rng)
			if armed.Load() {
				t.Fatal("the read never sent the query the compaction waits for")
			}
			to := c.rng.To
			if to == 0 {
				to = n
			}
			want := seqTo(max(c.rng.From, 1), to)
			if c.rng.Backward {
				want = reverse(want)
			}
			if !slices.Equal(vs, want) {
				t.Fatalf("read %d versions, want %d: %v", len(vs), len(want), vs)
			}
			if got := rowCount(t, cassandratest.Session(t, o), stream); got != 2+n-512 {
				t.Fatalf("%d rows after the compaction, want %d", got, 2+n-512)
			}
		})
	}
}

// TestCompactForeignRows: the block's last row written again with a
// write time other than the one this package gives it. Above it (a tool
// that copies rows stamped with the wall clock; a row repaired one past
// its corrupt cell's timestamp, package repair), it once made its block
// stay as it is: written at rowTimestamp, the run would lose the key to
// it while the range deletes took the versions before it. The run is
// written above it now (runTimestamp), and the block reads whole as one
// row. Below it, the block stays as it is.
func TestCompactForeignRows(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 50, time.Hour)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		above  bool
		blocks int
	}{{"Above", true, 1}, {"Below", false, 0}} {
		t.Run(c.name, func(t *testing.T) {
			stream := log.StreamID("foreign-" + c.name)
			idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-%d", stream, v)) }
			sizes := make([]int, 300)
			for i := range sizes {
				sizes[i] = 1
			}
			cs := chunksOf(stream, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), 1, 1, sizes, idOf)
			for i := range cs {
				if i == 255 && !c.above {
					continue // written below, at a key that holds nothing yet
				}
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			p := &cs[255]
			ts := time.Now().UnixMicro()
			if !c.above {
				ts = p.Time.UnixMicro() - 1000
			}
			if err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record) VALUES (?, 0, 256, ?, ?, ?, ?) USING TIMESTAMP ?`,
				string(stream), p.FirstVersion, p.Time, p.Seq, p.Body, ts).Exec(); err != nil {
				t.Fatal(err)
			}
			if k, err := s.Compact(ctx, stream, 0, 1, 300); err != nil || k != c.blocks {
				t.Fatalf("compacted %d blocks, %v; want %d", k, err, c.blocks)
			}
			vs, _ := readAll(t, s, stream, log.ReadRange{})
			if !slices.Equal(vs, seqTo(1, 300)) {
				t.Fatalf("read %d versions, want 300", len(vs))
			}
			var first int64
			if err := session.Query(`SELECT first_version FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = 256`, string(stream)).Scan(&first); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{true: 1, false: 256}[c.above]; first != want {
				t.Fatalf("row 256 holds %d..256, want %d..256", first, want)
			}
		})
	}
}

// TestCompactCellAboveRecord: a row whose first_version cell was written
// above its record cell (the same value, stamped with the wall clock),
// the record itself one past its own timestamp as a repair writes it
// (Repaired) or at its own. The compaction judged rows by
// WRITETIME(record) alone: at the block's key the run's first_version
// lost to that cell, leaving a block record under versions 256..256
// while the batch deleted rows 1..255; inside a range the delete left
// the cell alone, a row with versions and no record.
func TestCompactCellAboveRecord(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 50, time.Hour)
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		key      int64
		repaired bool
	}{{"KeyRepaired", 256, true}, {"Key", 256, false}, {"RangeRepaired", 100, true}} {
		t.Run(c.name, func(t *testing.T) {
			stream := log.StreamID("cell-" + c.name)
			idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-%d", stream, v)) }
			sizes := make([]int, 300)
			for i := range sizes {
				sizes[i] = 1
			}
			cs := chunksOf(stream, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), 1, 1, sizes, idOf)
			for i := range cs {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			p := &cs[c.key-1]
			own := p.Time.UnixMicro() + 1 // rowTimestamp of a 1-event row
			if c.repaired {
				if err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
					own+1, p.Body, string(stream), c.key).Exec(); err != nil {
					t.Fatal(err)
				}
			}
			if err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET first_version = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
				own+time.Hour.Microseconds(), c.key, string(stream), c.key).Exec(); err != nil {
				t.Fatal(err)
			}
			k, err := s.Compact(ctx, stream, 0, 1, 300)
			if err != nil {
				t.Fatalf("compact: %d blocks, %v", k, err)
			}
			var vs []int64
			err = s.Read(ctx, log.ReadRange{Stream: stream}, func(e *log.RecordedEvent) error {
				vs = append(vs, e.Version)
				return nil
			})
			if err != nil || !slices.Equal(vs, seqTo(1, 300)) {
				t.Fatalf("after compacting %d blocks: read %d versions, %v; want 300", k, len(vs), err)
			}
			// No row is left with a cell and no record (verify reports it,
			// unrepairable, and every compaction of the block fails on it).
			var n int
			if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`, string(stream), c.key).Scan(&n); err != nil {
				t.Fatal(err)
			}
			var body []byte
			if n > 0 {
				if err := session.Query(`SELECT record FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`, string(stream), c.key).Scan(&body); err != nil {
					t.Fatal(err)
				}
			}
			if n > 0 && body == nil {
				t.Fatalf("row %d is left without its record", c.key)
			}
			if k, err := s.Compact(ctx, stream, 0, 1, 300); err != nil {
				t.Fatalf("compact again: %d blocks, %v", k, err)
			}
		})
	}
}

// TestCompactClosedBucket: once a stream's next bucket is open, the last
// block of the bucket before it, partial, is rewritten as one row too,
// and so is a bucket that never held a whole block (a slow stream's day).
func TestCompactClosedBucket(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 50, time.Hour)
	ctx := context.Background()
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "closed-%d", v)) }
	for _, c := range []struct {
		stream       log.StreamID
		closedAt     int64 // bucket 0's last version
		blocks, rows int   // blocks CompactClosed rewrites, bucket 0's rows after it
	}{
		{"closed-long", 300, 1, 2}, // block 0 compacted by Compact first; 257-300 partial
		{"closed-slow", 40, 1, 1},
	} {
		t.Run(string(c.stream), func(t *testing.T) {
			n := c.closedAt + 10
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 1
			}
			cs := chunksOf(c.stream, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), 1, 1, sizes, idOf)
			for i := c.closedAt; i < n; i++ {
				cs[i].Bucket = 1
			}
			cs[c.closedAt].OpensBucket = true
			if k, err := s.CompactClosed(ctx, c.stream, 0, 1); err != nil || k != 0 {
				t.Fatalf("no bucket before bucket 0: compacted %d, %v", k, err)
			}
			for i := range cs[:c.closedAt] {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			if k, err := s.Compact(ctx, c.stream, 0, 1, c.closedAt); err != nil || k != int(c.closedAt/streams.BlockEvents) {
				t.Fatalf("complete blocks: compacted %d, %v", k, err)
			}
			if k, err := s.CompactClosed(ctx, c.stream, 1, c.closedAt+1); err != nil || k != 0 {
				t.Fatalf("bucket 1 not yet in the index: compacted %d, %v", k, err)
			}
			for i := c.closedAt; i < n; i++ {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			if k, err := s.CompactClosed(ctx, c.stream, 1, c.closedAt+1); err != nil || k != c.blocks {
				t.Fatalf("closed bucket: compacted %d, %v; want %d", k, err, c.blocks)
			}
			if got := rowCount(t, session, c.stream); got != c.rows {
				t.Fatalf("bucket 0 holds %d rows, want %d", got, c.rows)
			}
			if k, err := s.CompactClosed(ctx, c.stream, 1, c.closedAt+1); err != nil || k != 0 {
				t.Fatalf("again: compacted %d, %v", k, err)
			}
			vs, ts := readAll(t, s, c.stream, log.ReadRange{})
			if !slices.Equal(vs, seqTo(1, n)) {
				t.Fatalf("forward read: %v", vs)
			}
			for i, v := range vs {
				if want := chunkTime(cs, v); !ts[i].Equal(want) {
					t.Fatalf("version %d at %v, want %v", v, ts[i], want)
				}
			}
			if vs, _ := readAll(t, s, c.stream, log.ReadRange{Backward: true}); !slices.Equal(vs, reverse(seqTo(1, n))) {
				t.Fatalf("backward read: %v", vs)
			}
		})
	}
}

// TestCompactScansFromWhatItSaw: a bucket whose blocks stay as rows (here
// each block's events are past the limit on a block's bytes) is taken by
// a job at every block its fill completes, as the sequencer queues them.
// Each job reads the keys of its own blocks and those after what the
// rows were last seen to hold, not the bucket's from its first version:
// that made such a bucket cost a key read quadratic in its rows.
func TestCompactScansFromWhatItSaw(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	s := streams.New(cassandratest.Session(t, o), 100, time.Hour)
	ctx := context.Background()
	const (
		blocks   = 6
		perChunk = 4 // events a row
	)
	stream := log.StreamID("compact-large")
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	pad := strings.Repeat("x", 5000) // 256 such events pass a block's 1 MiB
	var cs []streams.Pending
	for v := int64(1); v <= blocks*streams.BlockEvents; v += perChunk {
		evs := make([]record.Event, perChunk)
		for j := range evs {
			evs[j] = record.Event{ID: uuid.New(), Type: "t", Data: fmt.Appendf(nil, `{"v":%d,"pad":%q}`, v+int64(j), pad)}
		}
		c := record.Chunk{Stream: stream, FirstVersion: v, OpensBucket: v == 1, Appends: []record.ChunkAppend{{ClientIDs: true, Events: evs}}}
		cs = append(cs, streams.NewPending(v, t0.Add(time.Duration(v)*time.Millisecond), &c))
	}
	rowsPerBlock := int64(streams.BlockEvents / perChunk)
	for j := range int64(blocks) {
		for _, c := range cs[j*rowsPerBlock : (j+1)*rowsPerBlock] {
			if err := s.WriteStream(ctx, []streams.Pending{c}, nil); err != nil {
				t.Fatal(err)
			}
		}
		// The job the sequencer queues for a fill that ends block j.
		lo, hi := j*streams.BlockEvents+1, (j+1)*streams.BlockEvents
		before := s.KeysScanned()
		n, err := s.Compact(ctx, stream, 0, lo-2*streams.BlockEvents, hi)
		if err != nil || n != 0 {
			t.Fatalf("block %d: compacted %d, %v; want none (its events are too large)", j, n, err)
		}
		read := s.KeysScanned() - before
		t.Logf("block %d: the job read %d keys", j, read)
		if want := min(j+1, 3) * rowsPerBlock; read > want {
			t.Errorf("block %d: the job read %d keys, want at most %d (its blocks': the bucket holds %d rows)", j, read, want, (j+1)*rowsPerBlock)
		}
	}
}
