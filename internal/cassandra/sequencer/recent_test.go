package sequencer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventlog/eventlog/internal/log"
)

// TestExactConflictsAnsweredFromRecentIDs: once a stream has had an
// exact-version conflict, its later conflicts are answered from the ids
// its owner committed at the versions they expected to take (recentIDs),
// with the same answers the check against the stream gives, and without
// that check; a retry is still a duplicate. Each such conflict used to
// wait for its stream's write and three reads on the shard's one checker.
func TestExactConflictsAnsweredFromRecentIDs(t *testing.T) {
	o := handoverKeyspace(t, 1)
	var h holder
	s := retrySequencer(t, o, time.Hour, h.hold, nil)
	t.Cleanup(func() { handoverClose(s) })
	ctx := context.Background()
	stream := log.StreamID("contended-1")
	checks := func() float64 {
		var m dto.Metric
		if err := s.metrics.checks.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	exact := func(expected int64, n int, ids []uuid.UUID, tag string) log.AppendRequest {
		req := retryRequest(t, stream, n, ids, tag)
		req.Expected = log.ExpectedVersion(expected)
		return req
	}
	conflict := func(name string, res log.AppendResult, err error, current int64) {
		t.Helper()
		var we *log.WrongExpectedVersionError
		if !errors.As(err, &we) || we.Current != current {
			t.Fatalf("%s: %+v %v; want wrong_expected_version at %d", name, res, err, current)
		}
	}
	first := exact(0, 1, newIDs(1), "v1")
	if r, err := s.Append(ctx, first); err != nil || r.FirstVersion != 1 {
		t.Fatalf("first append: %+v %v", r, err)
	}
	// The first conflict is checked against the stream; the head then
	// keeps its recent ids.
	r, err := s.Append(ctx, exact(0, 1, newIDs(1), "late"))
	conflict("first conflict", r, err, 1)
	if n := checks(); n != 1 {
		t.Fatalf("%v checks after the first conflict; want 1", n)
	}
	// Versions 2-4 with client ids, 5 with an id the server makes.
	for v := int64(1); v < 4; v++ {
		if _, err := s.Append(ctx, exact(v, 1, newIDs(1), "next")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, exact(4, 1, nil, "server-id")); err != nil {
		t.Fatal(err)
	}
	// Conflicts over versions the head has recorded, client ids or not.
	r, err = s.Append(ctx, exact(1, 3, newIDs(3), "stale"))
	conflict("stale by three", r, err, 5)
	r, err = s.Append(ctx, exact(4, 1, newIDs(1), "stale"))
	conflict("over the server's id", r, err, 5)
	if n := checks(); n != 1 {
		t.Fatalf("%v checks after conflicts the head's recent ids settle; want 1", n)
	}
	// A retry of version 5's append with its ids is still found.
	retryIDs := newIDs(1)
	if r, err := s.Append(ctx, exact(5, 1, retryIDs, "six")); err != nil || r.FirstVersion != 6 {
		t.Fatalf("append at 6: %+v %v", r, err)
	}
	if r, err := s.Append(ctx, exact(5, 1, retryIDs, "six")); err != nil || !r.Duplicate || r.FirstVersion != 6 {
		t.Fatalf("retry of the append at 6: %+v %v; want a duplicate at 6", r, err)
	}
	// Its ids with another payload: a conflict of ids, not of versions.
	if _, err := s.Append(ctx, exact(5, 1, retryIDs, "changed")); !errors.Is(err, log.ErrIdempotencyConflict) {
		t.Fatalf("the ids of 6 with another payload: %v; want idempotency_conflict", err)
	}
	// Two appenders at one version in one batch: one wins, the other's
	// conflict is over the winner's version, taken in the same batch.
	release := h.arm(t, s, "other-1")
	a := appendAsync(s, exact(6, 1, newIDs(1), "a"))
	waitQueued(t, s, stream, 1)
	b := appendAsync(s, exact(6, 1, newIDs(1), "b"))
	waitQueued(t, s, stream, 2)
	before := checks()
	release()
	ra, rb := <-a, <-b
	if ra.err != nil || ra.res.FirstVersion != 7 {
		t.Fatalf("first of the batch: %+v %v", ra.res, ra.err)
	}
	conflict("second of the batch", rb.res, rb.err, 7)
	if n := checks(); n != before {
		t.Fatalf("%v checks after a conflict within its batch; want %v", n, before)
	}
	// Further back than the head records: checked against the stream.
	for v := int64(7); v < 7+recentCap; v++ {
		if _, err := s.Append(ctx, exact(v, 1, newIDs(1), "more")); err != nil {
			t.Fatal(err)
		}
	}
	r, err = s.Append(ctx, exact(6, 1, newIDs(1), "far"))
	conflict("further back than recorded", r, err, 7+recentCap)
	if n := checks(); n != before+1 {
		t.Fatalf("%v checks after a conflict older than the recent ids; want %v", n, before+1)
	}
	if v := streamVersion(t, s, stream); v != 7+recentCap {
		t.Fatalf("stream at version %d, want %d", v, 7+recentCap)
	}
}

// TestRecentIDsRing: the record keeps the newest recentCap versions, and
// a gap since its last version starts it again (an id is never answered
// for a version it was not committed at).
func TestRecentIDsRing(t *testing.T) {
	var r recentIDs
	ids := newIDs(recentCap + 10)
	r.add(5, ids[:3])
	r.add(8, ids[3:])
	if _, ok := r.at(14); ok {
		t.Error("version 14 held after the ring dropped it")
	}
	for i, id := range ids[10:] {
		if got, ok := r.at(int64(15 + i)); !ok || got != id {
			t.Fatalf("version %d: %v %v, want %v", 15+i, got, ok, id)
		}
	}
	if _, ok := r.at(int64(5 + len(ids))); ok {
		t.Error("a version past the last recorded is held")
	}
	r.add(100, ids[:1])
	if _, ok := r.at(15); ok {
		t.Error("after a gap, versions before it are still held")
	}
	if got, ok := r.at(100); !ok || got != ids[0] {
		t.Errorf("version 100 after the gap: %v %v", got, ok)
	}
}

// TestRecentIDsBudget: at most maxRecent heads of a shard record recent
// ids; an evicted head gives its place back.
func TestRecentIDsBudget(t *testing.T) {
	hs := newHeads(maxRecent, 1000)
	var all []*head
	for i := range maxRecent + 1 {
		h := &head{stream: log.StreamID(fmt.Sprintf("s-%d", i)), ids: map[uuid.UUID]idAt{}, prev: -1}
		hs.put(h)
		hs.makeRecent(h)
		all = append(all, h)
	}
	if all[maxRecent].recent != nil || hs.recent != maxRecent {
		t.Fatalf("%d heads record recent ids (the last %v); want %d", hs.recent, all[maxRecent].recent != nil, maxRecent)
	}
	hs.evict(0, func(log.StreamID) {}) // the least recently used, all[0], goes
	if hs.recent != maxRecent-1 {
		t.Fatalf("%d heads counted after an eviction, want %d", hs.recent, maxRecent-1)
	}
	hs.makeRecent(all[maxRecent])
	if all[maxRecent].recent == nil {
		t.Fatal("no recent ids for a head once an evicted one gave its place back")
	}
}
