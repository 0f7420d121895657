package sequencer

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// A head past its id limit keeps the ids that are not yet filled (a
// lookup in the stream partitions cannot see them) and drops the rest.
func TestPruneIDsKeepsUnfilled(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	h := &head{ids: map[uuid.UUID]idAt{}, idsComplete: true}
	var filled, unfilled []uuid.UUID
	for i := range 30 {
		id := uuid.New()
		at := t0.Add(time.Duration(i) * time.Millisecond)
		h.ids[id] = newIDAt(int64(i+1), at)
		if i < 20 {
			filled = append(filled, id)
		} else {
			unfilled = append(unfilled, id)
		}
	}
	filledBefore := t0.Add(20 * time.Millisecond) // records from the 21st id on are in the tail

	h.pruneIDs(t0.Add(time.Second), time.Hour, 40, filledBefore, nil)
	if len(h.ids) != 30 || !h.idsComplete {
		t.Fatalf("under the limit: %d ids kept (complete %v), want all 30 and complete", len(h.ids), h.idsComplete)
	}
	h.pruneIDs(t0.Add(time.Second), time.Hour, 10, filledBefore, nil)
	if h.idsComplete {
		t.Error("a pruned head still claims every id")
	}
	for _, id := range unfilled {
		if _, ok := h.ids[id]; !ok {
			t.Fatalf("an id committed at or after the oldest unfilled record was dropped")
		}
	}
	for _, id := range filled {
		if _, ok := h.ids[id]; ok {
			t.Fatalf("a filled id was kept past the limit")
		}
	}
	// Ids older than the window go first, filled or not.
	h.pruneIDs(t0.Add(2*time.Hour), time.Hour, 5, filledBefore, nil)
	if len(h.ids) != 0 {
		t.Fatalf("%d ids older than the window kept", len(h.ids))
	}
}

// A complete head keeps the ids of the stream's first versions past the
// window, as a reloaded head finds them in the chunks; the others go.
func TestPruneIDsKeepsLowVersions(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	h := &head{ids: map[uuid.UUID]idAt{}, idsComplete: true}
	var low []uuid.UUID
	for i := range 40 {
		id := uuid.New()
		v := int64(streams.LowVersions - 19 + i) // 20 at or below, 20 past
		h.ids[id] = newIDAt(v, t0)
		if v <= streams.LowVersions {
			low = append(low, id)
		}
	}
	h.pruneIDs(t0.Add(2*time.Hour), time.Hour, 30, t0.Add(time.Hour), nil)
	if len(h.ids) != len(low) || !h.idsComplete {
		t.Fatalf("%d ids kept (complete %v), want the %d at or below %d and complete", len(h.ids), h.idsComplete, len(low), streams.LowVersions)
	}
	for _, id := range low {
		if _, ok := h.ids[id]; !ok {
			t.Fatalf("a low version's id was dropped by age from a complete head")
		}
	}
}

// A head whose unfilled ids alone pass the limit is not scanned again on
// every commit: the next pass waits until the map has doubled.
func TestPruneIDsAmortised(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	h := &head{ids: map[uuid.UUID]idAt{}}
	add := func(n int) {
		for range n {
			h.ids[uuid.New()] = newIDAt(int64(len(h.ids)+1), t0)
		}
	}
	add(30)
	h.pruneIDs(t0, time.Hour, 10, t0, nil) // nothing filled: all 30 stay
	if len(h.ids) != 30 {
		t.Fatalf("%d ids kept, want the 30 unfilled", len(h.ids))
	}
	later := t0.Add(time.Minute) // now every id so far is filled
	add(29)
	h.pruneIDs(t0, time.Hour, 10, later, nil)
	if len(h.ids) != 59 {
		t.Fatalf("pruned at %d ids, before the map doubled (60)", len(h.ids))
	}
	add(2)
	h.pruneIDs(t0, time.Hour, 10, later, nil)
	if len(h.ids) != 0 {
		t.Fatalf("%d filled ids kept once the map doubled", len(h.ids))
	}
}

// Past the id budget, the least recently used heads whose commits are all
// filled give up their ids (and stop claiming completeness); a head with
// an unfilled commit keeps them, and the count stays exact.
func TestHeadsIDBudget(t *testing.T) {
	hs := newHeads(100, 300)
	var oldIDs []uuid.UUID
	mk := func(name string, ids int, lastSeq int64) *head {
		h := &head{stream: log.StreamID(name), ids: map[uuid.UUID]idAt{}, idsComplete: true, lastSeq: lastSeq,
			bucket: streams.Bucket{Bucket: partition.Bucket{Number: 0, FirstVersion: 1}}, prev: -1}
		for range ids {
			id := uuid.New()
			h.ids[id] = idAt{version: 1}
			if name == "b" {
				oldIDs = append(oldIDs, id)
			}
		}
		hs.put(h)
		return h
	}
	oldUnfilled := mk("a", 100, 9) // least recently used, but seq 9 is not filled
	old := mk("b", 100, 3)
	mid := mk("c", 100, 4)
	recent := mk("d", 100, 5)
	hs.evict(5, func(log.StreamID) { t.Fatal("a head was evicted under the count limit") })
	if len(oldUnfilled.ids) != 100 || !oldUnfilled.idsComplete {
		t.Error("a head with an unfilled commit gave up its ids")
	}
	if len(old.ids) != 0 || old.idsComplete {
		t.Errorf("the least recently used filled head kept %d ids (complete %v)", len(old.ids), old.idsComplete)
	}
	// It held them all: a filter of them tells its retries (maybe seen,
	// looked up) from new ids (no lookup).
	if old.filter == nil {
		t.Fatal("the head that gave up a complete id set got no filter of it")
	}
	for _, id := range oldIDs {
		if !old.filter.mayHave([]uuid.UUID{id}) {
			t.Fatalf("id %s it gave up is not in its filter", id)
		}
	}
	if old.filter.mayHave([]uuid.UUID{uuid.New(), uuid.New()}) && old.filter.mayHave([]uuid.UUID{uuid.New(), uuid.New()}) {
		t.Error("the filter takes new ids for seen ones")
	}
	if hs.filterBytes != old.filter.bytes() {
		t.Errorf("filters counted at %d bytes, take %d", hs.filterBytes, old.filter.bytes())
	}
	if len(mid.ids) != 100 || len(recent.ids) != 100 {
		t.Errorf("more heads than needed gave up their ids: %d, %d left", len(mid.ids), len(recent.ids))
	}
	sum := 0
	for _, h := range hs.m {
		sum += len(h.ids)
	}
	if hs.ids != sum || sum > 300 {
		t.Fatalf("counted %d ids, the heads hold %d", hs.ids, sum)
	}
}
