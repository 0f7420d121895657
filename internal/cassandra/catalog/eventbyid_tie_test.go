package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestEventByIDOldRowsOfOneCommit: event_index rows written before 0003
// name a stream and version, not a log row, so two of one shard whose
// events were committed together (one commit time) tie on every key of
// the lookup's order. The answer is still one and the same at every
// lookup: by stream, then version. Ordered by when each row's read came
// back, it was one or the other (an unstable tie in the sort).
func TestEventByIDOldRowsOfOneCommit(t *testing.T) {
	session := migrated(t)
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	m, _ := catalog.Minute(id, time.Time{})
	at := time.Now().Truncate(time.Millisecond)
	events := map[log.StreamID]log.RecordedEvent{
		"a-1": {Stream: "a-1", Version: 4, ID: id, Time: at},
		"b-1": {Stream: "b-1", Version: 2, ID: id, Time: at},
	}
	c := catalog.New(catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 1,
		Locate: func(context.Context, int, int64, uuid.UUID) ([]catalog.Location, error) {
			t.Error("Locate called: no row names a log row")
			return nil, nil
		},
		ReadEvent: func(_ context.Context, st log.StreamID, v int64, got uuid.UUID) (log.RecordedEvent, bool, error) {
			e, ok := events[st]
			return e, ok && e.Version == v && got == id, nil
		}})
	// b-1's row in slot 2, a-1's in slot 6: servers before 0003 drew a
	// slot per fill request.
	for st, slot := range map[log.StreamID]int{"b-1": 2, "a-1": 6} {
		err := session.Query(`UPDATE event_index SET stream = ?, version = ? WHERE shard = 0 AND minute = ? AND slot = ? AND id = ?`,
			string(st), events[st].Version, m, slot, [16]byte(id)).Exec()
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[log.StreamID]int{}
	for range 40 {
		e, err := c.EventByID(ctx, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[e.Stream]++
	}
	if got["a-1"] != 40 {
		t.Fatalf("answers of 40 lookups: %v; want a-1 every time", got)
	}
}
