package catalog_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestUntimedLookupReadsLogTimesOnlyForTheOldIndex: a lookup of an id
// that is not a UUIDv7 reads the shards' log times (a read of every
// shard's log end) only where they place rows: event_index's rows of
// servers that filed ids by their commit minute, or every row when there
// is no Cassandra clock to file by. event_id_commits' rows are filed by
// Cassandra's clock, so a keyspace without event_index rows (created at
// 0008 or later) needs none; every such lookup read them.
func TestUntimedLookupReadsLogTimesOnlyForTheOldIndex(t *testing.T) {
	session := migrated(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		old   catalog.OldIndex
		clock bool
		want  int64
	}{
		{"CreatedAt0008WithClock", catalog.OldIndex{Unwritten: true}, true, 0},
		{"UpgradedWithClock", catalog.OldIndex{}, true, 1},
		{"NoClock", catalog.OldIndex{Unwritten: true}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			o := catalog.Options{Session: session, Streams: streams.New(session, 100, time.Hour), Shards: 2, OldIndex: tc.old,
				LogTimes: func(context.Context) ([]time.Time, error) {
					calls.Add(1)
					return []time.Time{time.Now(), time.Now()}, nil
				},
				Locate: func(context.Context, int, int64, uuid.UUID) ([]catalog.Location, error) { return nil, nil },
				ReadEvent: func(context.Context, log.StreamID, int64, uuid.UUID) (log.RecordedEvent, bool, error) {
					return log.RecordedEvent{}, false, nil
				}}
			if tc.clock {
				o.Clock = func(context.Context) time.Time { return time.Now() }
			}
			_, err := catalog.New(o).EventByID(ctx, uuid.New(), nil)
			if !errors.Is(err, log.ErrEventNotFound) {
				t.Fatalf("lookup of an absent id: %v", err)
			}
			if got := calls.Load(); got != tc.want {
				t.Fatalf("log times read %d times, want %d", got, tc.want)
			}
		})
	}
}
