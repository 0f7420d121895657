package repair

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// onStatement runs fn once, synchronously, after the first query whose
// statement contains sub.
type onStatement struct {
	sub   string
	fired atomic.Bool
	fn    func()
}

func (o *onStatement) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if bytes.Contains([]byte(q.Statement), []byte(o.sub)) && o.fired.CompareAndSwap(false, true) {
		o.fn()
	}
}

// TestRepairTiesCompactionRun: the repaired row's timestamp (the corrupt
// record cell's + 1) is exactly rowTimestamp of a row at the same key
// holding one more event. A compaction that read the block before the
// repair wrote (taking the corrupt chunk from a catch-up's run) once
// wrote its block run at the key at that timestamp, and the cells mixed:
// first_version from the run, record (a tie: the greater value) from the
// repair, and an event was lost. A compaction checks every row it reads
// now: it refuses the block holding the corrupt row (ErrCorrupt), and the
// repair inside it repairs the row.
func TestRepairTiesCompactionRun(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.NoBlocks = true
		so.Cassandra.Limits = log.DefaultLimits()
		so.Cassandra.Limits.MaxEventsPerAppend = 100
		so.Cassandra.BucketMaxEvents = 249 // bucket 1 opens at version 250
	})
	ctx := context.Background()
	plain := cassandratest.Session(t, opts.Cassandra)
	const stream = "y-tie"
	add := func(n int, data string) {
		t.Helper()
		req := log.AppendRequest{Stream: stream, Expected: log.Any}
		for range n {
			req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: "t", Data: json.RawMessage(data)})
		}
		if _, err := store.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
		if err := store.ReadStream(ctx, log.ReadRange{Stream: stream, From: 1}, func(*log.RecordedEvent) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for range 249 / 83 {
		add(83, `{"y":1}`)
	}
	add(1, `{"big":"`+strings.Repeat("ab", 400)+`"}`) // 250: opens bucket 1; large, so that the block is compressed (format 5)
	add(6, `{"y":1}`)                                 // 251..256: the block's key
	add(1, `{"y":1}`)                                 // 257
	readAll := func(s *shardstore.Store) (int, error) {
		n := 0
		err := s.ReadStream(ctx, log.ReadRange{Stream: stream, From: 1}, func(*log.RecordedEvent) error { n++; return nil })
		return n, err
	}
	if n, err := readAll(store); n != 257 || err != nil {
		t.Fatal(n, err)
	}
	r := mustRepairer(t, plain)
	for _, k := range []int64{250, 256, 257} {
		row, ok, err := r.readRow(ctx, stream, 1, k)
		if err != nil || !ok {
			t.Fatalf("bucket 1 row %d: %v %v", k, ok, err)
		}
		t.Logf("row %d: %d..%d wt %d", k, row.first, k, row.wt)
	}
	// A catch-up writes records 251..256 and 257 again as one run at 257.
	row257, _, _ := r.readRow(ctx, stream, 1, 257)
	rewriteAsRun(t, r, stream, 1, 251, 257, row257.seq, 2)
	// Row 256 corrupt on disk, at its own timestamp (greater bytes).
	if row := corruptAtOwnTime(t, r, stream, 1, 256, `{"y":1}`, `{"y":2}`); row.body[0] != 6 {
		t.Fatalf("body format %d", row.body[0])
	}

	// The compaction's session: once it has read the block's rows, the
	// repair runs (before the compaction's batch).
	var res Result
	var rerr error
	obs := &onStatement{sub: "WRITETIME(record) FROM stream_events", fn: func() {
		res, rerr = r.StreamRow(ctx, stream, 1, 251, 256)
	}}
	n, cerr := streams.New(observedSession(t, opts.Cassandra, obs), 100, time.Hour).Compact(ctx, stream, 1, 250, 256)
	if !obs.fired.Load() {
		t.Fatalf("the repair did not run inside the compaction")
	}
	if n != 0 || !errors.Is(cerr, record.ErrCorrupt) {
		t.Errorf("compaction: %d blocks, %v; want none and ErrCorrupt", n, cerr)
	}
	if rerr != nil || res.Outcome != Repaired {
		t.Errorf("the repair inside the compaction: %+v, %v; want repaired", res, rerr)
	}
	after, ok, err := r.readRow(ctx, stream, 1, 256)
	if err != nil || !ok {
		t.Fatalf("row 256 after: %v, %v", ok, err)
	}
	if _, err := decodeRow(after.first, 256, after.seq, after.time, after.body); err != nil || after.first != 251 {
		t.Errorf("row 256 after: %d..256, %v; want 251..256 intact", after.first, err)
	}
	if got, err := readAll(shardstoretest.Reopen(t, opts)); err != nil || got != 257 {
		t.Errorf("read after: %d events, %v; want 257", got, err)
	}
}
