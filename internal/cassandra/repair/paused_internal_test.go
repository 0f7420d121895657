package repair

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestRepairInsidePausedCompaction: a compaction (a paused ex-owner's)
// reads block 1..256 whole and healthy; before its batch, row 256, the
// block's key, is corrupted by a write an hour above it and repaired
// (one past that). The compaction read no corrupt row, so nothing kept
// it off the block: its run at rowTimestamp lost the key to the repaired
// row while its range delete, in the same batch, took rows 1..255, and a
// read from version 1 returned version 256 alone, without an error. The
// deletes now wait for the run to be read back at its key; the next
// compaction writes the run above the repaired row (runTimestamp).
func TestRepairInsidePausedCompaction(t *testing.T) {
	const stream = "p-paused"
	_, opts, plain, r := mustBlockStore(t, stream, "p", 1000)
	ctx := context.Background()
	var (
		res  Result
		rerr error
	)
	obs := &onStatement{sub: "WRITETIME(record) FROM stream_events", fn: func() {
		row, ok, err := r.readRow(ctx, stream, 0, streams.BlockEvents)
		if err != nil || !ok {
			rerr = fmt.Errorf("row 256: %v, %v", ok, err)
			return
		}
		bad := bytes.Replace(row.body, []byte(`{"p":1256}`), []byte(`{"p":1257}`), 1)
		if err := plain.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
			row.wt+time.Hour.Microseconds(), bad, stream, streams.BlockEvents).Exec(); err != nil {
			rerr = err
			return
		}
		res, rerr = r.StreamRow(ctx, stream, 0, streams.BlockEvents, streams.BlockEvents)
	}}
	n, err := streams.New(observedSession(t, opts.Cassandra, obs), 100, time.Hour).Compact(ctx, stream, 0, 1, streams.BlockEvents)
	if !obs.fired.Load() || rerr != nil || res.Outcome != Repaired {
		t.Fatalf("the repair inside the compaction: fired %v, %+v, %v", obs.fired.Load(), res, rerr)
	}
	if n != 0 || err != nil {
		t.Errorf("the compaction around the repair: %d blocks, %v; want none", n, err)
	}
	readAll := func() (int, error) {
		got := 0
		err := shardstoretest.Reopen(t, opts).ReadStream(ctx, log.ReadRange{Stream: stream, From: 1}, func(*log.RecordedEvent) error {
			got++
			return nil
		})
		return got, err
	}
	if got, err := readAll(); err != nil || got != streams.BlockEvents {
		t.Fatalf("read after: %d events, %v; want %d", got, err, streams.BlockEvents)
	}
	if n, err := streams.New(plain, 100, time.Hour).Compact(ctx, stream, 0, 1, streams.BlockEvents); n != 1 || err != nil {
		t.Errorf("the next compaction: %d blocks, %v; want the block", n, err)
	}
	if got, err := readAll(); err != nil || got != streams.BlockEvents {
		t.Fatalf("read after the next compaction: %d events, %v; want %d", got, err, streams.BlockEvents)
	}
}
