package repair

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestRepairTrustsFirstVersion: a compacted block row (the only copy of
// versions 1..256) whose first_version cell is corrupt (129: a chunk
// boundary) fails its check. The repair once rebuilt the record from the
// log for 129..256 alone and called it repaired, and reads, which failed
// loudly before, then silently left out versions 1..128. It is
// unrepairable now: 129 is not the bucket's first version, and no other
// row holds version 128. Nothing is written, and reads still fail.
func TestRepairTrustsFirstVersion(t *testing.T) {
	const stream = "f-first"
	_, opts, plain, r := mustBlockStore(t, stream, "f", 0)
	ctx := context.Background()
	if n, err := streams.New(plain, 100, time.Hour).Compact(ctx, stream, 0, 1, streams.BlockEvents); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	count := func() (int, int64, error) {
		n, first := 0, int64(0)
		err := shardstoretest.Reopen(t, opts).ReadStream(ctx, log.ReadRange{Stream: stream, From: 1}, func(e *log.RecordedEvent) error {
			if n == 0 {
				first = e.Version
			}
			n++
			return nil
		})
		return n, first, err
	}
	n, _, err := count()
	t.Logf("before: %d events, %v", n, err)
	row, _, _ := r.readRow(ctx, stream, 0, 256)
	if err := plain.Query(`UPDATE stream_events USING TIMESTAMP ? SET first_version = 129 WHERE stream = ? AND bucket = 0 AND last_version = 256`, row.wt, stream).Exec(); err != nil {
		t.Fatal(err)
	}
	n, _, err = count()
	t.Logf("first_version corrupt: %d events, %v", n, err)
	res, err := r.StreamRow(ctx, stream, 0, 129, 256)
	if err != nil || res.Outcome != Unrepairable || !strings.Contains(res.Reason, "first version 129 is not confirmed") {
		t.Errorf("repair of the finding 129..256: %+v, %v; want unrepairable, first version not confirmed", res, err)
	}
	if after, _, _ := r.readRow(ctx, stream, 0, 256); after.wt != row.wt || !bytes.Equal(after.body, row.body) {
		t.Errorf("row 256 written: wt %d, want %d", after.wt, row.wt)
	}
	if n, first, err := count(); err == nil {
		t.Errorf("after: %d events from version %d without an error; want an error", n, first)
	}
}
