package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestChunkCrossingLowVersionsKeepsLowIDs: two appends of a stream
// committed in one group share a chunk; when the first ends at or below
// LowVersions and the second past it, the chunk ends past LowVersions.
// The first append's ids must still be kept past the idempotency window,
// as every id of a stream's first LowVersions is (README, "Appending"):
// written only as stream_ids rows, with the window as their TTL, they
// expired, and an "any" retry of that append was written again.
func TestChunkCrossingLowVersionsKeepsLowIDs(t *testing.T) {
	s, _ := mustStore(t, 50, time.Second) // stream_ids live 1 s
	ctx := context.Background()
	stream := log.StreamID("crossing-1")
	t0 := time.Now().Truncate(time.Millisecond)
	events := func(from, n int) []record.Event {
		out := make([]record.Event, n)
		for i := range out {
			out[i] = record.Event{ID: uuid.New(), Type: "t", Data: fmt.Appendf(nil, `{"v":%d}`, from+i)}
		}
		return out
	}
	first := streams.LowVersions - 4 // the low append: first..LowVersions
	before := record.Chunk{Stream: stream, FirstVersion: 1, OpensBucket: true,
		Appends: []record.ChunkAppend{{ClientIDs: false, Events: events(1, first-1)}}}
	low := events(first, 5)
	crossing := record.Chunk{Stream: stream, FirstVersion: int64(first), Appends: []record.ChunkAppend{
		{ClientIDs: true, Events: low},
		{ClientIDs: true, Events: events(streams.LowVersions+1, 6)},
	}}
	cs := []streams.Pending{streams.NewPending(1, t0, &before), streams.NewPending(2, t0.Add(time.Millisecond), &crossing)}
	if err := s.WriteStream(ctx, cs, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the stream_ids rows expire

	ids := make([]uuid.UUID, len(low))
	req := log.AppendRequest{Stream: stream, Expected: log.Any}
	for i, e := range low {
		ids[i] = e.ID
		req.Events = append(req.Events, log.ProposedEvent{ID: e.ID, ClientID: true, Type: e.Type, Data: json.RawMessage(e.Data)})
	}
	head := int64(streams.LowVersions + 6)
	found, _, err := s.LookupIDs(ctx, stream, []int64{0}, head, ids, false)
	if err != nil || len(found) != len(ids) {
		t.Fatalf("look up the low append's ids past the window: %d of %d found, %v", len(found), len(ids), err)
	}
	lowIDs, err := s.LowIDs(ctx, stream, []int64{0})
	if err != nil || len(lowIDs) != len(ids) {
		t.Fatalf("low ids: %d, %v; want %d", len(lowIDs), err, len(ids))
	}
	all, _, complete, err := s.IDs(ctx, stream, []int64{0}, head, 4096)
	if err != nil || !complete || len(all) != len(ids) {
		t.Fatalf("ids of the head: %d, complete %v, %v; want %d", len(all), complete, err, len(ids))
	}
	m, err := s.MatchAppend(ctx, &req, head, []int64{0}, nil)
	if err != nil || !m.Duplicate || m.FirstVersion != int64(first) {
		t.Fatalf("match of an any retry past the window: %+v %v, want a duplicate at %d", m, err, first)
	}
}
