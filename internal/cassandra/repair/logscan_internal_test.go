package repair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestLogChunks: the log is read back from a row's shard_seq a window at
// a time, across segments, for exactly the chunks the row holds, which
// decode to what the stored row holds (seqs, times, events); a row whose
// bounds cut a chunk of the log is unrepairable; an intact row, or none,
// is skipped; past r.maxRecords records read back, a row is
// unrepairable. One shard of 3-row segments, read 2 rows a window, the
// stream's appends between another's.
func TestLogChunks(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Shards, so.Cassandra.SegmentRows = 1, 3
		so.FillDelay = time.Hour // a read writes the stream's appends as one run
	})
	ctx := context.Background()
	session := cassandratest.Session(t, opts.Cassandra)
	add := func(stream log.StreamID, events ...string) {
		t.Helper()
		req := log.AppendRequest{Stream: stream, Expected: log.Any}
		for _, d := range events {
			req.Events = append(req.Events, log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: "t", Data: json.RawMessage(d)})
		}
		if _, err := store.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 10; i++ {
		add("w-run", fmt.Sprintf(`{"w":%d}`, i))
		add("w-other", fmt.Sprintf(`{"o":%d}`, i))
	}
	add("w-two", `{"a":1}`, `{"a":2}`)
	for _, s := range []log.StreamID{"w-run", "w-two"} {
		if err := store.ReadStream(ctx, log.ReadRange{Stream: s, From: 1}, func(*log.RecordedEvent) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(ctx, session, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.window = 2

	t.Run("OK", func(t *testing.T) {
		row, ok, err := r.readRow(ctx, "w-run", 0, 10)
		if err != nil || !ok || row.first != 1 {
			t.Fatalf("w-run@10: %+v %v %v; want a row of 1..10", row, ok, err)
		}
		stored, err := decodeRow(1, 10, row.seq, row.time, row.body)
		if err != nil || len(stored) != 10 {
			t.Fatalf("the stored row: %d parts, %v; want 10", len(stored), err)
		}
		got, reason, err := r.logChunks(ctx, 0, "w-run", 0, 1, 10, row.seq)
		if err != nil || reason != "" || !sameParts(got, stored) {
			t.Fatalf("logChunks: %d parts, %q, %v; want the stored row's 10", len(got), reason, err)
		}
		body := encode(got)
		again, err := decodeRow(1, 10, row.seq, row.time, body)
		if err != nil || !sameParts(again, stored) {
			t.Fatalf("encoded: %v", err)
		}
	})

	t.Run("MaxRecords", func(t *testing.T) {
		row, ok, err := r.readRow(ctx, "w-run", 0, 10)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		stored, err := decodeRow(1, 10, row.seq, row.time, row.body)
		if err != nil {
			t.Fatal(err)
		}
		// The row's chunks are in the records from its first chunk's seq
		// to its last's (one shard: every seq is a committed record).
		n := row.seq - stored[0].seq + 1
		defer func(m int64) { r.maxRecords = m }(r.maxRecords)
		r.maxRecords = n
		if got, reason, err := r.logChunks(ctx, 0, "w-run", 0, 1, 10, row.seq); err != nil || reason != "" || !sameParts(got, stored) {
			t.Fatalf("at most %d records: %d parts, %q, %v; want the stored row's 10", n, len(got), reason, err)
		}
		r.maxRecords = n - 1
		_, reason, err := r.logChunks(ctx, 0, "w-run", 0, 1, 10, row.seq)
		if want := fmt.Sprintf("versions 1..1 are not in the %d log records of shard 0 read back from seq %d", n-1, row.seq); err != nil || !strings.Contains(reason, want) {
			t.Fatalf("at most %d records: %q, %v; want %q", n-1, reason, err, want)
		}
	})

	t.Run("Limited", func(t *testing.T) {
		row, ok, err := r.readRow(ctx, "w-run", 0, 10)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		rows := int64(0) // the log rows a read back of the row sees
		for lo := int64(0); lo < row.seq; lo += r.window {
			got, err := r.committed(ctx, 0, lo, min(lo+r.window, row.seq))
			if err != nil {
				t.Fatal(err)
			}
			rows += int64(len(got))
		}
		lim := &countingLimiter{}
		defer func(l Limiter) { r.limit = l }(r.limit)
		r.limit = lim
		if _, reason, err := r.logChunks(ctx, 0, "w-run", 0, 1, 10, row.seq); err != nil || reason != "" {
			t.Fatal(reason, err)
		}
		// Every log row read back waits, those of every window (all
		// committed here, one shard), and none is read unasked.
		if n := lim.n.Load(); n < rows || n == 0 {
			t.Fatalf("%d waits for the %d log rows read back", n, rows)
		}
		lim.err = context.Canceled
		if _, _, err := r.logChunks(ctx, 0, "w-run", 0, 1, 10, row.seq); !errors.Is(err, context.Canceled) {
			t.Fatalf("a limiter that fails: %v, want its error", err)
		}
	})

	t.Run("CutChunk", func(t *testing.T) {
		row, ok, err := r.readRow(ctx, "w-two", 0, 2)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		_, reason, err := r.logChunks(ctx, 0, "w-two", 0, 2, 2, row.seq)
		if err != nil || !strings.Contains(reason, "starts before the row's first version 2") {
			t.Fatalf("reason %q, %v", reason, err)
		}
	})

	t.Run("Skipped", func(t *testing.T) {
		for _, c := range []struct {
			stream      log.StreamID
			first, last int64
			want        string
		}{{"w-run", 1, 10, "no longer corrupt"}, {"w-run", 1, 11, "gone"}, {"w-run", 2, 10, "now holds versions 1..10"}} {
			res, err := r.StreamRow(ctx, c.stream, 0, c.first, c.last)
			if err != nil || res.Outcome != Skipped || !strings.Contains(res.Reason, c.want) {
				t.Errorf("%s %d..%d: %+v, %v; want skipped, %q", c.stream, c.first, c.last, res, err, c.want)
			}
		}
	})
}

// countingLimiter counts its waits, and fails them with err when set.
type countingLimiter struct {
	n   atomic.Int64
	err error
}

func (l *countingLimiter) Wait(context.Context) error {
	l.n.Add(1)
	return l.err
}
