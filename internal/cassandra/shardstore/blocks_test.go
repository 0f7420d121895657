package shardstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestBlocksBehindTheFill: a stream appended one event at a time has its
// complete blocks rewritten as one row each behind the fill (the store's
// default), and reads the same before and after; with NoBlocks its rows
// stay about a row per append (a few appends that waited in the tail
// together share a run).
func TestBlocksBehindTheFill(t *testing.T) {
	o := newKeyspace(t, 2)
	session := cassandratest.Session(t, o)
	// The rows ending at or before 512, how many of them are neither of
	// the first two blocks' runs nor a tail run the compaction keeps (one
	// that reaches back across 256, into block 0), and how many are those
	// runs.
	rows := func(stream string) (n, others, blocks int) {
		iter := session.Query(`SELECT first_version, last_version FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version <= 512`, stream).Iter()
		var first, last int64
		for iter.Scan(&first, &last) {
			n++
			block := first == 1 && last == 256 || first == 257 && last == 512
			if block {
				blocks++
			} else if !(first <= 256 && last > 256) {
				others++
			}
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return n, others, blocks
	}
	ctx := context.Background()
	const n = 600 // blocks 1-256 and 257-512 complete
	for _, noBlocks := range []bool{false, true} {
		s := open(t, shardstore.Options{Cassandra: o, NoBlocks: noBlocks})
		stream := fmt.Sprintf("blocks-%v", noBlocks)
		for i := range n {
			req := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.ExpectedVersion(i),
				Events: []log.ProposedEvent{ev(uuid.New(), "Tested", fmt.Sprintf(`{"i":%d}`, i))}}
			if _, err := s.Append(ctx, req); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		before := readAll(t, s, stream)
		checkGapless(t, stream, before, n)
		waited := time.Now()
		deadline := waited.Add(30 * time.Second)
		if noBlocks {
			time.Sleep(2 * time.Second) // time a compaction would have had
		}
		for {
			if _, others, _ := rows(stream); noBlocks || others == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("NoBlocks %v: rows checked %s after the appends", noBlocks, time.Since(waited).Round(time.Millisecond))
		// Without blocks the rows stay as the fill wrote them: a row per
		// append, or per few appends when the fill lagged and wrote them
		// together (373 of 512 on a loaded CI machine), never a block.
		switch n, others, blocks := rows(stream); {
		case !noBlocks && (others != 0 || n > 3):
			t.Fatalf("%d rows hold versions 1-512, %d of them neither its two blocks nor a run across 256", n, others)
		case noBlocks && (blocks != 0 || n < 64):
			t.Fatalf("NoBlocks: %d rows hold versions 1-512, %d of them a block's run: the rows were rewritten", n, blocks)
		}
		after := readAll(t, s, stream)
		checkGapless(t, stream, after, n)
		for i := range after {
			if a, b := after[i], before[i]; a.ID != b.ID || string(a.Data) != string(b.Data) || !a.Time.Equal(b.Time) {
				t.Fatalf("version %d read %+v after the blocks, %+v before", a.Version, a, b)
			}
		}
		s.Close()
	}
}
