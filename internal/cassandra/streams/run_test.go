package streams_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// chunksOf is a stream's chunks as the records seq, seq+1, … committed
// them, one a second from t0: chunk i holds sizes[i] events (ids from
// idOf), the first at version base, opening bucket 0.
func chunksOf(stream log.StreamID, t0 time.Time, seq, base int64, sizes []int, idOf func(v int64) uuid.UUID) []streams.Pending {
	var out []streams.Pending
	v := base
	for i, n := range sizes {
		evs := make([]record.Event, n)
		for j := range evs {
			evs[j] = record.Event{ID: idOf(v + int64(j)), Type: "t", Data: fmt.Appendf(nil, `{"v":%d}`, v+int64(j))}
		}
		c := record.Chunk{Stream: stream, FirstVersion: v, OpensBucket: i == 0, Appends: []record.ChunkAppend{{ClientIDs: true, Events: evs}}}
		out = append(out, streams.NewPending(seq+int64(i), t0.Add(time.Duration(i)*time.Second), &c))
		v += int64(n)
	}
	return out
}

// readAll reads the whole stream forward (or backward) and returns each
// event's version and time.
func readAll(t *testing.T, s *streams.Store, stream log.StreamID, r log.ReadRange) ([]int64, []time.Time) {
	t.Helper()
	r.Stream = stream
	var (
		vs []int64
		ts []time.Time
	)
	err := s.Read(context.Background(), r, func(e *log.RecordedEvent) error {
		if want := fmt.Sprintf(`{"v":%d}`, e.Version); string(e.Data) != want {
			t.Fatalf("version %d holds %s", e.Version, e.Data)
		}
		vs = append(vs, e.Version)
		ts = append(ts, e.Time)
		return nil
	})
	if err != nil {
		t.Fatalf("read %+v: %v", r, err)
	}
	return vs, ts
}

func seqTo(from, to int64) []int64 {
	var out []int64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// TestRunsReadOnceWhoeverWroteThem writes a stream's chunks as runs (an
// owner's tail) and the same chunks a chunk at a time (a later owner's
// catch-up of the same records), in both orders: each version is read
// once, in order, with its own commit time, whichever landed last; the
// row that holds more wins its key (a catch-up written after an owner's
// run must not erase the run's earlier chunks); time travel and id
// lookups find versions inside a run. Past LowVersions the ids are rows of
// their own, written in the run's batch.
func TestRunsReadOnceWhoeverWroteThem(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 3, time.Hour) // small pages: a run's parts span pages of rows
	// Not a whole millisecond: a run's times are the rows' precision.
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 1_500_123, time.UTC)
	sizes := []int{1, 2, 1, 1, 3, 1, 1, 1, 2, 1} // 14 events in 10 chunks
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "id-%d", v)) }
	for _, base := range []int64{1, streams.LowVersions + 1} {
		for _, order := range []string{"runs-then-chunks", "chunks-then-runs", "one-run-then-chunks"} {
			stream := log.StreamID(fmt.Sprintf("order-%s-%d", order, base))
			t.Run(string(stream), func(t *testing.T) {
				testRuns(t, session, s, order, chunksOf(stream, t0, 100, base, sizes, idOf), idOf)
			})
		}
	}
}

// testRuns writes cs (14 events in 10 chunks) in the given order and
// reads them back.
func testRuns(t *testing.T, session *gocql.Session, s *streams.Store, order string, cs []streams.Pending, idOf func(v int64) uuid.UUID) {
	ctx := context.Background()
	stream, t0 := cs[0].Stream, cs[0].Time
	b := cs[0].FirstVersion - 1 // version i of the test is b+i
	if rows := streams.Runs(cs); len(rows) != 1 || len(rows[0]) != len(cs) {
		t.Fatalf("Runs made %d rows of a stream's 10 chunks in one bucket, want one", len(rows))
	}
	runs := func() {
		// Two runs: chunks 0-6, then 7-9 (the tail written twice); or one
		// of them all.
		tails := [][]streams.Pending{cs[:7], cs[7:]}
		if order == "one-run-then-chunks" {
			tails = [][]streams.Pending{cs}
		}
		for _, w := range tails {
			if err := s.WriteStream(ctx, w, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	chunks := func() {
		// A catch-up from the record of chunk 3: a row each.
		for i := 3; i < len(cs); i++ {
			if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if order != "chunks-then-runs" {
		runs()
		chunks()
	} else {
		chunks()
		runs()
	}
	// The chunk that ends a run is a row of its own too: the run holds
	// more and must be the row at that key.
	end := cs[6].LastVersion
	if order == "one-run-then-chunks" {
		end = cs[9].LastVersion
	}
	var first int64
	if err := session.Query(`SELECT first_version FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`,
		string(stream), end).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first != b+1 {
		t.Fatalf("the row ending at %d starts at %d: the one-chunk row won over the run", end, first)
	}

	at := func(vs ...int64) []int64 {
		for i := range vs {
			vs[i] += b
		}
		return vs
	}
	all := at(seqTo(1, 14)...)
	vs, ts := readAll(t, s, stream, log.ReadRange{})
	if !slices.Equal(vs, all) {
		t.Fatalf("forward read %v, want %v", vs, all)
	}
	for i, v := range vs {
		if want := chunkTime(cs, v).Truncate(time.Millisecond); !ts[i].Equal(want) {
			t.Fatalf("version %d at %v, want its chunk's commit time %v", v, ts[i], want)
		}
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{Backward: true})
	if !slices.Equal(vs, reverse(slices.Clone(all))) {
		t.Fatalf("backward read %v", vs)
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 5, To: b + 11})
	if !slices.Equal(vs, at(seqTo(5, 11)...)) {
		t.Fatalf("read 5..11 %v", vs)
	}
	// Versions 1-4 are only in a run, whose key is past 5 (rows of the
	// catch-up end at 5 and 8 before it).
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 1, To: b + 5})
	if !slices.Equal(vs, at(seqTo(1, 5)...)) {
		t.Fatalf("read 1..5 %v", vs)
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 2, To: b + 3, Backward: true})
	if !slices.Equal(vs, at(3, 2)) {
		t.Fatalf("backward read 3..2 %v", vs)
	}
	// From 5 down: the row ending at 5 holds only 5; 4..1 are in a run
	// whose key is past the bound.
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 1, To: b + 5, Backward: true})
	if !slices.Equal(vs, at(5, 4, 3, 2, 1)) {
		t.Fatalf("backward read 5..1 %v", vs)
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 1, To: b + 8, Backward: true})
	if !slices.Equal(vs, at(8, 7, 6, 5, 4, 3, 2, 1)) {
		t.Fatalf("backward read 8..1 %v", vs)
	}
	vs, _ = readAll(t, s, stream, log.ReadRange{From: b + 4, To: b + 12, Backward: true, Limit: 6})
	if !slices.Equal(vs, at(12, 11, 10, 9, 8, 7)) {
		t.Fatalf("backward read 12..4 limit 6: %v", vs)
	}
	// Time travel: as of just after chunk i's commit, versions up to its
	// last (the search probes rows that start past what they are asked
	// for: it must still narrow); before chunk 0's, nothing.
	for i := range cs {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := s.VersionAt(tctx, stream, t0.Add(time.Duration(i)*time.Second+500*time.Millisecond))
		cancel()
		if err != nil || v != cs[i].LastVersion {
			t.Fatalf("version at chunk %d's time: %d, %v; want %d", i, v, err, cs[i].LastVersion)
		}
	}
	if v, err := s.VersionAt(ctx, stream, t0.Add(-time.Second)); err != nil || v != 0 {
		t.Fatalf("version before the first commit: %d, %v", v, err)
	}
	// Ids: every version's id is found, at its version.
	ids, _, complete, err := s.IDs(ctx, stream, []int64{0}, b+14, 100)
	if err != nil || !complete || len(ids) != 14 {
		t.Fatalf("ids: %d, complete %v, %v", len(ids), complete, err)
	}
	for v := b + 1; v <= b+14; v++ {
		if ids[idOf(v)] > v || ids[idOf(v)] < chunkFirst(cs, v) {
			t.Fatalf("id of %d recorded at %d", v, ids[idOf(v)])
		}
	}
}

func chunkFirst(cs []streams.Pending, v int64) int64 {
	for _, c := range cs {
		if c.FirstVersion <= v && v <= c.LastVersion {
			return c.FirstVersion
		}
	}
	return 0
}

func chunkTime(cs []streams.Pending, v int64) time.Time {
	for _, c := range cs {
		if c.FirstVersion <= v && v <= c.LastVersion {
			return c.Time
		}
	}
	return time.Time{}
}

func reverse(s []int64) []int64 {
	slices.Reverse(s)
	return s
}

// TestBoundedReadStopsAtItsBound: a read bounded below a run's key reads
// on past its bound only until the run comes, not to the bucket's end
// (the rows of a catch-up after the run are many).
func TestBoundedReadStopsAtItsBound(t *testing.T) {
	s, rows := rowCountingStore(t, 50)
	ctx := context.Background()
	stream := log.StreamID("bounded-1")
	cs := oneEventChunks(stream, 210)
	// An owner's run of chunks 0-9, then a catch-up from chunk 3, a row
	// each: versions 1-3 are only in the run, whose key is 10.
	if err := s.WriteStream(ctx, cs[:10], nil); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < len(cs); i++ {
		if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []log.ReadRange{{From: 2, To: 2}, {From: 2, To: 5}, {From: 1, To: 3, Backward: true}} {
		rows.Store(0)
		vs, _ := readAll(t, s, stream, r)
		want := seqTo(r.From, r.To)
		if r.Backward {
			want = reverse(want)
		}
		if !slices.Equal(vs, want) {
			t.Fatalf("read %+v: %v", r, vs)
		}
		// A page or two (a span's read-ahead may have fetched the next
		// page by the time the run is met, more often on a loaded
		// machine), never the ~200 rows to the bucket's end.
		if n := rows.Load(); n > 64 {
			t.Fatalf("read %+v fetched %d rows of a partition of %d", r, n, len(cs))
		}
	}
}

// rowCountingStore is a store on a new keyspace, reading pages of
// pageSize rows, and the count of stream_events rows its queries fetched.
func rowCountingStore(t *testing.T, pageSize int) (*streams.Store, *atomic.Int64) {
	o := cassandratest.NewKeyspace(t, nil)
	rows := new(atomic.Int64)
	session := observedSession(t, o, func(q gocql.ObservedQuery) {
		if strings.Contains(q.Statement, "FROM stream_events") {
			rows.Add(int64(q.Rows))
		}
	})
	return streams.New(session, pageSize, time.Hour), rows
}

// oneEventChunks returns n chunks of stream, one event each, from version 1.
func oneEventChunks(stream log.StreamID, n int) []streams.Pending {
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = 1
	}
	return chunksOf(stream, time.Now().Truncate(time.Millisecond), 1, 1, sizes, func(int64) uuid.UUID { return uuid.New() })
}

// observedSession is a session on keyspace o that calls fn with each
// query it runs.
func observedSession(t *testing.T, o cassandra.Options, fn func(gocql.ObservedQuery)) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(cassandratest.Hosts()...)
	c.Keyspace = o.Keyspace
	c.Consistency = gocql.Quorum
	c.QueryObserver = observer(fn)
	session, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	return session
}

type observer func(gocql.ObservedQuery)

func (f observer) ObserveQuery(_ context.Context, q gocql.ObservedQuery) { f(q) }

// TestLimitedReadFetchesFewRows: a read of a few events fetches about as
// many rows, not a page of the configured size (the rest of the bucket:
// an HTTP page of one event took twice as long as it needed).
func TestLimitedReadFetchesFewRows(t *testing.T) {
	s, rows := rowCountingStore(t, 100)
	ctx := context.Background()
	stream := log.StreamID("limited-1")
	cs := oneEventChunks(stream, 120)
	for i := range cs {
		if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		r    log.ReadRange
		want []int64
	}{
		{log.ReadRange{Limit: 3}, seqTo(1, 3)},
		{log.ReadRange{From: 50, Limit: 5}, seqTo(50, 54)},
		{log.ReadRange{Backward: true, Limit: 4}, reverse(seqTo(117, 120))},
		{log.ReadRange{From: 100}, seqTo(100, 120)},
	} {
		rows.Store(0)
		vs, _ := readAll(t, s, stream, c.r)
		if !slices.Equal(vs, c.want) {
			t.Fatalf("read %+v: %v", c.r, vs)
		}
		if n, most := rows.Load(), 2*int64(max(c.r.Limit, 16)); n > most {
			t.Fatalf("read %+v fetched %d rows, want at most %d", c.r, n, most)
		}
	}
}
