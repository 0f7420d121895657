package streams_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// mustStore returns a Store over a fresh keyspace (dropped after the
// test) that reads pageSize rows a page and keeps ids for window, and its
// session, to write rows by hand.
func mustStore(t *testing.T, pageSize int, window time.Duration) (*streams.Store, *gocql.Session) {
	t.Helper()
	session := cassandratest.Session(t, cassandratest.NewKeyspace(t, nil))
	return streams.New(session, pageSize, window), session
}

// TestReadRefusesBodyOfOtherLength: a chunk row whose body holds more or
// fewer events than the versions its row (or run part) spans — an
// operator's mistake, a bug of another build, a disk error — is corrupt:
// a read fails with ErrCorrupt rather than give its events at versions
// they do not have (forward from the row's first, backward from its last,
// and with a gap or a version twice against the rows beside it).
func TestReadRefusesBodyOfOtherLength(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "id-%d", v)) }
	body := func(n int) []byte { // a chunk body of n events
		c := record.Chunk{FirstVersion: 1, Appends: []record.ChunkAppend{{Events: make([]record.Event, n)}}}
		for i := range c.Appends[0].Events {
			c.Appends[0].Events[i] = record.Event{ID: uuid.New(), Type: "t", Data: []byte(`{}`)}
		}
		return record.AppendChunkBody(nil, &c)
	}
	for _, tc := range []struct {
		name string
		runs bool  // the chunks written as one run row, else a row each
		last int64 // the row whose body is replaced (its last version)
		body []byte
	}{
		{"MoreEvents", false, 1, body(2)},  // row 1..1 holds 2 events
		{"FewerEvents", false, 3, body(1)}, // row 2..3 holds 1
		{"RunPartMoreEvents", true, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := log.StreamID("corrupt-" + tc.name)
			cs := chunksOf(stream, t0, 1, 1, []int{1, 2}, idOf) // rows 1..1 and 2..3
			writes := [][]streams.Pending{cs[:1], cs[1:]}
			if tc.runs {
				writes = [][]streams.Pending{cs}
			}
			for _, w := range writes {
				if err := s.WriteStream(ctx, w, nil); err != nil {
					t.Fatal(err)
				}
			}
			b := tc.body
			if tc.runs {
				// The run of both chunks, the first part's body holding
				// the second's two events.
				parts := []record.Part{
					{Seq: 1, Time: t0.UnixMilli(), FirstVersion: 1, LastVersion: 1, Body: cs[1].Body},
					{Seq: 2, Time: t0.UnixMilli(), FirstVersion: 2, LastVersion: 3, Body: cs[1].Body},
				}
				b = record.AppendRun(nil, parts)
			}
			err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
				t0.Add(time.Hour).UnixMicro(), b, string(stream), tc.last).Exec() // after the rows written
			if err != nil {
				t.Fatal(err)
			}
			for _, backward := range []bool{false, true} {
				var got []int64
				err := s.Read(ctx, log.ReadRange{Stream: stream, From: 1, Backward: backward}, func(e *log.RecordedEvent) error {
					got = append(got, e.Version)
					return nil
				})
				if !errors.Is(err, record.ErrCorrupt) {
					t.Errorf("backward %v: read versions %v, err %v; want ErrCorrupt", backward, got, err)
				}
			}
		})
	}
}

// TestLegacyIDLookupRefusesBodyOfOtherLength: the ids of a chunk row
// written before the ids column are read from its body, numbered from the
// row's first version. A body holding more or fewer events than the row's
// versions is corrupt: the lookup fails with ErrCorrupt rather than answer
// a retry with versions its events do not have.
func TestLegacyIDLookupRefusesBodyOfOtherLength(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		events int // in the body of row 1..2
	}{
		{"MoreEvents", 3},
		{"FewerEvents", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := log.StreamID("legacy-" + tc.name)
			evs := make([]record.Event, tc.events)
			for i := range evs {
				evs[i] = record.Event{ID: uuid.New(), Type: "t", Data: []byte(`{}`)}
			}
			c := record.Chunk{Stream: stream, FirstVersion: 1, Appends: []record.ChunkAppend{{ClientIDs: true, Events: evs}}}
			// A row of before the ids column (and the static row): no ids.
			err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record) VALUES (?, 0, 2, 1, ?, 1, ?)`,
				string(stream), t0, record.AppendChunkBody(nil, &c)).Exec()
			if err != nil {
				t.Fatal(err)
			}
			found, _, err := s.LookupIDs(ctx, stream, []int64{0}, 2, []uuid.UUID{evs[len(evs)-1].ID}, false)
			if !errors.Is(err, record.ErrCorrupt) {
				t.Errorf("lookup found %v, err %v; want ErrCorrupt", found, err)
			}
		})
	}
}

// TestCompactRefusesBodyOfOtherLength: a compaction does not copy a chunk
// whose body holds more or fewer events than its row's versions into a
// block, where it would outlive its row: it fails with ErrCorrupt and
// leaves the block's rows as they are.
func TestCompactRefusesBodyOfOtherLength(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	idOf := func(v int64) uuid.UUID {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "compact-corrupt-%d", v))
	}
	for _, tc := range []struct {
		name   string
		events int // in the body of the row at version 10
	}{
		{"MoreEvents", 3},
		{"FewerEvents", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := log.StreamID("compact-corrupt-" + tc.name)
			sizes := make([]int, streams.BlockEvents)
			for i := range sizes {
				sizes[i] = 1
			}
			sizes[9] = 2 // versions 10..11
			cs := chunksOf(stream, t0, 1, 1, sizes, idOf)
			// The row 10..11 written as the filler writes rows, its body
			// holding tc.events events.
			c := record.Chunk{FirstVersion: 10, Appends: []record.ChunkAppend{{ClientIDs: true, Events: make([]record.Event, tc.events)}}}
			for i := range c.Appends[0].Events {
				c.Appends[0].Events[i] = record.Event{ID: idOf(int64(10 + i)), Type: "t", Data: []byte(`{}`)}
			}
			cs[9].Body = record.AppendChunkBody(nil, &c)
			for i := range cs {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			last := cs[len(cs)-1].LastVersion
			k, err := s.Compact(ctx, stream, 0, 1, last)
			if !errors.Is(err, record.ErrCorrupt) || k != 0 {
				t.Fatalf("compacted %d blocks, err %v; want none and ErrCorrupt", k, err)
			}
			var rows int
			if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, string(stream)).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != len(cs) {
				t.Fatalf("%d rows after the compaction, want the %d written", rows, len(cs))
			}
		})
	}
}

// TestReadRefusesCorruptRunWhole: a run row with a byte changed in a
// later part's body (a disk's error after the row was written) gives a
// read no event of the run: it fails with ErrCorrupt before sending any
// of its parts, rather than send the parts before the corrupt one (a
// forward read sends a run's parts in batches of 64 as it decodes them)
// or, when the changed byte is in an event's data, send the event as
// another one.
func TestReadRefusesCorruptRunWhole(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session := cassandratest.Session(t, o)
	s := streams.New(session, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "run-corrupt-%d", v)) }
	const n = 100 // 1-event chunks, one run row
	for _, tc := range []struct {
		name string
		// corrupt changes the stored row in the last part's body.
		corrupt func(row []byte)
	}{
		{"DataByte", func(row []byte) {
			i := bytes.LastIndex(row, fmt.Appendf(nil, `{"v":%d}`, n))
			row[i+len(`{"v":`)] = '9' // still JSON: {"v":900}
		}},
		{"FramingByte", func(row []byte) {
			id := idOf(n)
			i := bytes.LastIndex(row, id[:])
			row[i-4] = 0 // the body's format byte (then 1 append, its flags, 1 event, the id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := log.StreamID("run-corrupt-" + tc.name)
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 1
			}
			if err := s.WriteStream(ctx, chunksOf(stream, t0, 1, 1, sizes, idOf), nil); err != nil {
				t.Fatal(err)
			}
			var (
				row  []byte
				rows int
			)
			iter := session.Query(`SELECT record FROM stream_events WHERE stream = ? AND bucket = 0`, string(stream)).Iter()
			for iter.Scan(&row) {
				rows++
			}
			if err := iter.Close(); err != nil {
				t.Fatal(err)
			}
			if rows != 1 {
				t.Fatalf("%d rows written, want one run", rows)
			}
			tc.corrupt(row)
			err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
				t0.Add(time.Hour).UnixMicro(), row, string(stream), n).Exec() // after the row written
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []log.ReadRange{{From: 1}, {From: 1, Backward: true}, {From: 1, Limit: 10}, {From: 1, Borrowed: true}} {
				r.Stream = stream
				var got []int64
				err := s.Read(ctx, r, func(e *log.RecordedEvent) error {
					got = append(got, e.Version)
					return nil
				})
				if !errors.Is(err, record.ErrCorrupt) || len(got) != 0 {
					t.Errorf("read %+v: versions %v, err %v; want none and ErrCorrupt", r, got, err)
				}
			}
		})
	}
}

// TestCompactRefusesCorruptCopy: a block holding a corrupt row whose
// chunk is held by another row too (a catch-up's run) is not compacted:
// the compaction checks every row it reads, not only the copy of each
// chunk it keeps, and fails with ErrCorrupt, leaving the rows as they
// are. Compacted, it would delete the corrupt row, and a repair writing
// the row again (package repair) would race the delete.
func TestCompactRefusesCorruptCopy(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	const stream = log.StreamID("compact-corrupt-copy")
	idOf := func(v int64) uuid.UUID {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-%d", stream, v))
	}
	sizes := make([]int, streams.BlockEvents)
	for i := range sizes {
		sizes[i] = 1
	}
	cs := chunksOf(stream, t0, 1, 1, sizes, idOf)
	// Row 255 holding two events in its body.
	bad := cs[254]
	c := record.Chunk{FirstVersion: 255, Appends: []record.ChunkAppend{{ClientIDs: true, Events: []record.Event{
		{ID: idOf(255), Type: "t", Data: []byte(`{"v":255}`)}, {ID: idOf(256), Type: "t", Data: []byte(`{"v":256}`)}}}}}
	bad.Body = record.AppendChunkBody(nil, &c)
	for i := range cs {
		p := cs[i : i+1]
		if i == 254 {
			p = []streams.Pending{bad}
		}
		if err := s.WriteStream(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A catch-up writes chunks 255 and 256 again, as one run at 256.
	if err := s.WriteStream(ctx, cs[254:], nil); err != nil {
		t.Fatal(err)
	}
	k, err := s.Compact(ctx, stream, 0, 1, streams.BlockEvents)
	if !errors.Is(err, record.ErrCorrupt) || k != 0 {
		t.Fatalf("compacted %d blocks, err %v; want none and ErrCorrupt", k, err)
	}
	var rows int
	if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, string(stream)).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(cs) {
		t.Fatalf("%d rows after the compaction, want the %d written", rows, len(cs))
	}
}
