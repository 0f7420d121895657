package streams_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestCorruptIDsAreNotNoIDs: a chunk's id list with a byte of an id
// changed — in a row's ids column (rows written between migrations 0004
// and 0005), or in a chunk a shard holds unwritten — is corrupt, never
// read as a list without that id: a lookup of the id fails with
// ErrCorrupt naming the row (rather than answer "not stored", which makes
// the append's retry be written again), and a write of the chunk fails
// and writes nothing (rather than write the chunk without its ids).
func TestCorruptIDsAreNotNoIDs(t *testing.T) {
	s, session := mustStore(t, 100, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	idOf := func(v int64) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "ids-sum-%d", v)) }
	// flip changes a byte of the id of version 1 in the list ids.
	flip := func(t *testing.T, ids []byte) []byte {
		t.Helper()
		id := idOf(1)
		i := bytes.Index(ids, id[:])
		if i < 0 {
			t.Fatalf("id not in the list %x", ids)
		}
		ids = bytes.Clone(ids)
		ids[i+3] ^= 0x10
		return ids
	}

	t.Run("Column", func(t *testing.T) {
		const stream = log.StreamID("ids-column")
		p := chunksOf(stream, t0, 1, 1, []int{2}, idOf)[0]
		// A row of a build between 0004 and 0005: its ids in its column,
		// none in the static row (no low_ids_from).
		err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record, ids) VALUES (?, 0, ?, ?, ?, ?, ?, ?)`,
			string(stream), p.LastVersion, p.FirstVersion, p.Time, p.Seq, p.Body, flip(t, p.IDs)).Exec()
		if err != nil {
			t.Fatal(err)
		}
		found, _, err := s.LookupIDs(ctx, stream, []int64{0}, 2, []uuid.UUID{idOf(1)}, false)
		var ce *log.CorruptError
		if !errors.Is(err, record.ErrCorrupt) || !errors.As(err, &ce) || ce.Kind != log.CorruptChunkIDs || ce.Stream != stream || ce.Last != 2 {
			t.Fatalf("lookup of a corrupt list's id: found %v, err %v; want a CorruptError of kind chunk_ids, versions 1..2", found, err)
		}
	})

	t.Run("Pending", func(t *testing.T) {
		const stream = log.StreamID("ids-pending")
		cs := chunksOf(stream, t0, 1, 1, []int{2}, idOf)
		cs[0].IDs = flip(t, cs[0].IDs)
		if err := s.WriteStream(ctx, cs, nil); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("write of a chunk whose ids are corrupt: %v, want ErrCorrupt", err)
		}
		var n int
		if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, string(stream)).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows written (%v), want none", n, err)
		}
	})
}
