package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestCompactRefusesUnknownFormat: a compaction does not copy into a
// block a chunk row that readers refuse for its format (an empty record
// cell, or a body whose format byte was changed, here that of a body
// written before checksums): it fails with ErrCorrupt and leaves the
// block's rows as they are, rather than panic (the compaction's
// goroutine took the server down) or give the body a valid format byte
// (the row, refused by every read, came out of the compaction as a block
// they read).
func TestCompactRefusesUnknownFormat(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	idOf := func(v int64) uuid.UUID {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "compact-format-%d", v))
	}
	for _, tc := range []struct {
		name string
		body func(plain []byte) []byte // the row at version 10, from its plain body
	}{
		{"Empty", func([]byte) []byte { return []byte{} }},
		{"FormatByteChanged", func(plain []byte) []byte { return append([]byte{plain[0] ^ 1<<3}, plain[1:]...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := log.StreamID("compact-format-" + tc.name)
			sizes := make([]int, streams.BlockEvents)
			for i := range sizes {
				sizes[i] = 1
			}
			cs := chunksOf(stream, t0, 1, 1, sizes, idOf)
			plain, err := record.PlainChunkBody(cs[9].Body)
			if err != nil {
				t.Fatal(err)
			}
			cs[9].Body = tc.body(plain)
			for i := range cs {
				if err := s.WriteStream(ctx, cs[i:i+1], nil); err != nil {
					t.Fatal(err)
				}
			}
			// The premise: reads refuse the row.
			if err := s.Read(ctx, log.ReadRange{Stream: stream, From: 1}, func(*log.RecordedEvent) error { return nil }); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("read before the compaction: %v, want ErrCorrupt", err)
			}
			last := cs[len(cs)-1].LastVersion
			k, err := s.Compact(ctx, stream, 0, 1, last)
			if !errors.Is(err, record.ErrCorrupt) || k != 0 {
				t.Fatalf("compacted %d blocks, err %v; want none and ErrCorrupt", k, err)
			}
			if n := rowCount(t, session, stream); n != len(cs) {
				t.Fatalf("%d rows after the compaction, want the %d written", n, len(cs))
			}
			if err := s.Read(ctx, log.ReadRange{Stream: stream, From: 1}, func(*log.RecordedEvent) error { return nil }); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("read after the compaction: %v, want ErrCorrupt", err)
			}
		})
	}
}
