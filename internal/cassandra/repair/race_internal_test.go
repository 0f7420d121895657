package repair

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// afterRowRead runs fn once, synchronously, after the n-th read of the
// repair's cqlRow of key last.
type afterRowRead struct {
	last  int64
	n     int
	seen  atomic.Int32
	fired atomic.Bool
	fn    func()
}

func (o *afterRowRead) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if q.Statement != cqlRow || len(q.Values) < 3 || q.Values[2] != o.last {
		return
	}
	if int(o.seen.Add(1)) == o.n && o.fired.CompareAndSwap(false, true) {
		o.fn()
	}
}

// TestRepairRaceCompaction: a compaction of the block holding a corrupt
// row, run between the repair's last read of the row and its write, once
// took the row's chunk from another row (a catch-up's run) and deleted
// the corrupt row; the repair's write of the record cell alone, one past
// the delete's timestamp, then left a row with a record and no versions,
// which every forward read failed on. A compaction checks every row it
// reads now, and refuses the block (ErrCorrupt); the repair writes the
// whole row, and the stream reads whole both ways, then compacts.
func TestRepairRaceCompaction(t *testing.T) {
	const stream = "z-race"
	store, opts, plain, r := mustBlockStore(t, stream, "z", 1000)
	ctx := context.Background()
	readAll := func(s *shardstore.Store) ([]string, error) {
		var out []string
		err := s.ReadStream(ctx, log.ReadRange{Stream: stream, From: 1}, func(e *log.RecordedEvent) error {
			out = append(out, fmt.Sprintf("%d:%s", e.Version, e.Data))
			return nil
		})
		return out, err
	}
	want, err := readAll(store)
	if err != nil || len(want) != streams.BlockEvents {
		t.Fatal(len(want), err)
	}

	last, ok, err := r.readRow(ctx, stream, 0, 256)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	// A catch-up (a new owner) writes records 255 and 256 again as one
	// run at key 256, as Runs does: rows 255 (255..255) and 256 (a run of
	// 255..256) now both hold chunk 255.
	rewriteAsRun(t, r, stream, 0, 255, 256, last.seq, 2)
	st := streams.New(plain, 100, time.Hour)

	// Row 255 corrupt on disk: its record changed, at its own write time
	// (greater bytes, so that it wins the tie).
	row := corruptAtOwnTime(t, r, stream, 0, 255, `{"z":1255}`, `{"z":1256}`)

	// The repair's session: right after its second read of row 255 (the
	// check just before its write), a server's compaction of block 1..256.
	var compacted int
	var cerr error
	obs := &afterRowRead{last: 255, n: 2, fn: func() {
		compacted, cerr = st.Compact(ctx, stream, 0, 1, streams.BlockEvents)
	}}
	rr := mustRepairer(t, observedSession(t, opts.Cassandra, obs))
	res, err := rr.StreamRow(ctx, stream, 0, 255, 255)
	if !obs.fired.Load() {
		t.Fatalf("the compaction did not run in the window")
	}
	if compacted != 0 || !errors.Is(cerr, record.ErrCorrupt) {
		t.Errorf("the compaction in the window: %d blocks, %v; want none and ErrCorrupt", compacted, cerr)
	}
	if err != nil || res.Outcome != Repaired {
		t.Fatalf("repair: %+v, %v; want repaired", res, err)
	}
	after, ok, err := r.readRow(ctx, stream, 0, 255)
	if err != nil || !ok {
		t.Fatalf("row 255 after: %v, %v", ok, err)
	}
	if _, err := decodeRow(after.first, 255, after.seq, after.time, after.body); err != nil || after.first != 255 || after.seq != row.seq || !after.time.Equal(row.time) {
		t.Errorf("row 255 after: %d..255 seq %d time %v, %v; want 255..255 seq %d time %v", after.first, after.seq, after.time, err, row.seq, row.time)
	}
	got, err := readAll(shardstoretest.Reopen(t, opts))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("forward read after: %d events, %v; want the %d acknowledged", len(got), err, len(want))
	}
	back := 0
	err = shardstoretest.Reopen(t, opts).ReadStream(ctx, log.ReadRange{Stream: stream, From: 1, To: 256, Backward: true}, func(*log.RecordedEvent) error {
		back++
		return nil
	})
	if err != nil || back != streams.BlockEvents {
		t.Errorf("backward read after: %d events, %v; want %d", back, err, streams.BlockEvents)
	}
	// The block holding the repaired row compacts, and reads the same.
	if n, err := st.Compact(ctx, stream, 0, 1, streams.BlockEvents); n != 1 || err != nil {
		t.Errorf("a compaction after the repair: %d blocks, %v; want the block", n, err)
	}
	if got, err := readAll(shardstoretest.Reopen(t, opts)); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("forward read after the compaction: %d events, %v; want the %d acknowledged", len(got), err, len(want))
	}
}
