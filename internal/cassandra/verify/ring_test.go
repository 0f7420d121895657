package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/cassandra/verify"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestRunReadsTheWholeRing: however many token ranges stream_events and
// snapshots are read in, Run reads every stream row and every snapshot
// once: as many as a scan of the whole table finds. The first range
// starts at the ring's minimum token and the last ends at its maximum;
// a range that left out the ends, or the minimum's bound that Cassandra
// took otherwise, would leave rows unread and unverified.
func TestRunReadsTheWholeRing(t *testing.T) {
	o, err := cassandratest.Migrate(t, cassandratest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cassandratest.DropBounded(t, o) })
	session := cassandratest.Session(t, o)
	ctx := context.Background()
	ss := streams.New(session, 100, time.Hour)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 200 {
		stream := fmt.Sprintf("ring-%d", i)
		c := record.Chunk{Stream: log.StreamID(stream), FirstVersion: 1, OpensBucket: true, Appends: []record.ChunkAppend{{
			Events: []record.Event{{ID: uuid.New(), Type: "t", Data: []byte(`{}`)}}}}}
		if err := ss.WriteStream(ctx, []streams.Pending{streams.NewPending(int64(i+1), t0, &c)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var rows int64
	iter := session.Query(`SELECT last_version FROM stream_events`).Iter()
	var last *int64
	for iter.Scan(&last) {
		if last != nil {
			rows++
		}
		last = nil
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if rows < 200 {
		t.Fatalf("%d stream rows written, want 200", rows)
	}
	for _, n := range []int{1, 2, 3, 7, 64} {
		rep, err := verify.Run(ctx, session, verify.Options{Streams: true, Ranges: n, Concurrency: 2}, func(f verify.Finding) {
			t.Errorf("%d ranges: a finding in an intact keyspace: %v", n, f.CorruptError)
		})
		if err != nil || rep.StreamRows != rows {
			t.Fatalf("%d ranges: %d stream rows read, %v; the table holds %d", n, rep.StreamRows, err, rows)
		}
	}
}
