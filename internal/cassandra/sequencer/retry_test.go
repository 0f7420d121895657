package sequencer

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// retrySequencer is a Sequencer of one instance over o whose idempotency
// window (and stream_ids TTL) is window; hold, if set, runs before each
// commit; mod, if set, changes its configuration. It owns every shard
// once it returns.
func retrySequencer(t *testing.T, o cassandra.Options, window time.Duration, hold func(int), mod func(*Config)) *Sequencer {
	t.Helper()
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	cfg.Streams, cfg.IdempotencyWindow = streams.New(cfg.Session, o.PageSize, window), window
	cfg.Address, cfg.LeaseTTL, cfg.BeforeCommit = "a", 10*time.Second, hold
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.tickAndTake(ctx); err != nil {
		t.Fatalf("first tick: %v", err)
	}
	if n := len(s.Owned()); n != cfg.Shards {
		t.Fatalf("owns %d of %d shards", n, cfg.Shards)
	}
	return s
}

// retryRequest is an append of n events with the ids ids (nil: ids the
// server makes), validated: a fresh copy each call, as a client resends.
func retryRequest(t *testing.T, stream log.StreamID, n int, ids []uuid.UUID, tag string) log.AppendRequest {
	t.Helper()
	req := log.AppendRequest{Stream: stream, Expected: log.Any}
	for i := range n {
		e := log.ProposedEvent{Type: "Tested", Data: json.RawMessage(fmt.Sprintf(`{"tag":%q,"i":%d}`, tag, i))}
		if ids != nil {
			e.ID = ids[i]
		}
		req.Events = append(req.Events, e)
	}
	if err := req.Validate(log.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	return req
}

func newIDs(n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = uuid.New()
	}
	return out
}

// fillTo appends server-id events to stream until its version is n.
func fillTo(t *testing.T, s *Sequencer, stream log.StreamID, n int) {
	t.Helper()
	for v := 0; v < n; {
		k := min(n-v, 500)
		if _, err := s.Append(context.Background(), retryRequest(t, stream, k, nil, "fill")); err != nil {
			t.Fatal(err)
		}
		v += k
	}
}

// holder holds a shard's commits (BeforeCommit) while armed, so that the
// appends queued meanwhile are decided together in the next batch.
type holder struct {
	mu      sync.Mutex
	release chan struct{}
	entered chan struct{}
}

func (h *holder) hold(int) {
	h.mu.Lock()
	rel, ent := h.release, h.entered
	h.release, h.entered = nil, nil
	h.mu.Unlock()
	if rel != nil {
		close(ent)
		<-rel
	}
}

// arm makes the next commit wait until the returned func is called;
// the commit is the one of the append arm sends (to stream), and arm
// returns once it waits.
func (h *holder) arm(t *testing.T, s *Sequencer, stream log.StreamID) (release func()) {
	t.Helper()
	rel, ent := make(chan struct{}), make(chan struct{})
	h.mu.Lock()
	h.release, h.entered = rel, ent
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.Append(context.Background(), retryRequest(t, stream, 1, nil, "held")); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-ent:
	case <-time.After(20 * time.Second):
		t.Fatal("the held commit never came")
	}
	return func() { close(rel); <-done }
}

// waitQueued waits until the shard of stream has n appends queued.
func waitQueued(t *testing.T, s *Sequencer, stream log.StreamID, n int) {
	t.Helper()
	id := partition.ShardOf(string(stream), s.cfg.Shards)
	handoverWait(t, fmt.Sprintf("%d appends queued", n), func() bool {
		s.mu.Lock()
		sh := s.shards[id]
		s.mu.Unlock()
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return len(sh.queue) == n
	})
}

type answer struct {
	res log.AppendResult
	err error
}

func appendAsync(s *Sequencer, req log.AppendRequest) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		res, err := s.Append(context.Background(), req)
		ch <- answer{res, err}
	}()
	return ch
}

// streamVersion is the stream's version as written, once its owner has
// written it.
func streamVersion(t *testing.T, s *Sequencer, stream log.StreamID) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx, stream); err != nil {
		t.Fatal(err)
	}
	h, err := s.cfg.Streams.Head(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return h.Version
}

// TestExpiredIDsResentTwiceAppendOnce: an append whose ids have left the
// window (stream_ids expired, the head still holding them) is a new
// append; sent twice at once, as a client resends, it must still be
// written once. Each copy was a retry check that found the ids expired
// and went back to the queue marked fresh, and a fresh append skipped the
// id check altogether: both were written.
func TestExpiredIDsResentTwiceAppendOnce(t *testing.T) {
	const window = 2 * time.Second
	o := handoverKeyspace(t, 1)
	var h holder
	s := retrySequencer(t, o, window, h.hold, nil)
	t.Cleanup(func() { handoverClose(s) })
	stream := log.StreamID("expired-1")
	fillTo(t, s, stream, streams.LowVersions+1) // past the ids kept for ever
	ids := newIDs(2)
	first, err := s.Append(context.Background(), retryRequest(t, stream, 2, ids, "a"))
	if err != nil || first.FirstVersion != streams.LowVersions+2 {
		t.Fatalf("first append: %+v %v", first, err)
	}
	streamVersion(t, s, stream)
	time.Sleep(window + 1500*time.Millisecond) // its stream_ids rows expire

	release := h.arm(t, s, "other-1")
	a := appendAsync(s, retryRequest(t, stream, 2, ids, "a"))
	waitQueued(t, s, stream, 1)
	b := appendAsync(s, retryRequest(t, stream, 2, ids, "a"))
	waitQueued(t, s, stream, 2)
	release()
	ra, rb := <-a, <-b
	if ra.err != nil || rb.err != nil {
		t.Fatalf("resends: %v / %v", ra.err, rb.err)
	}
	if ra.res.Duplicate == rb.res.Duplicate || ra.res.FirstVersion != rb.res.FirstVersion {
		t.Fatalf("two resends: %+v and %+v; want one written and the other its duplicate", ra.res, rb.res)
	}
	if v := streamVersion(t, s, stream); v != first.LastVersion+2 {
		t.Fatalf("stream at version %d, want %d: the resent append was written twice", v, first.LastVersion+2)
	}
}

// TestExpiredIDsLoadedShortlyBeforeTheyExpire: ids a head loads from
// stream_ids keep the time their rows have left, not a window from the
// load. A new owner loaded the head a second before the ids expired; an
// "any" resend after they expired must be a new append. The loaded ids
// counted as committed at the load, and the resend was refused as ids
// committed but not readable (409) for up to a window more.
func TestExpiredIDsLoadedShortlyBeforeTheyExpire(t *testing.T) {
	const window = 5 * time.Second
	o := handoverKeyspace(t, 1)
	s := retrySequencer(t, o, window, nil, nil)
	closeS := sync.OnceFunc(func() { handoverClose(s) })
	t.Cleanup(closeS)
	ctx := context.Background()
	stream := log.StreamID("reloaded-1")
	fillTo(t, s, stream, streams.LowVersions+1) // past the ids kept for ever
	ids := newIDs(2)
	first, err := s.Append(ctx, retryRequest(t, stream, 2, ids, "a"))
	if err != nil || first.FirstVersion != streams.LowVersions+2 {
		t.Fatalf("first append: %+v %v", first, err)
	}
	streamVersion(t, s, stream)
	written := time.Now() // its stream_ids rows expire a window from here at the latest

	closeS()
	s2 := retrySequencer(t, o, window, nil, nil)
	t.Cleanup(func() { handoverClose(s2) })
	time.Sleep(time.Until(written.Add(window - 1500*time.Millisecond)))
	if _, err := s2.Append(ctx, retryRequest(t, stream, 1, nil, "load")); err != nil {
		t.Fatal(err)
	}
	if late := time.Since(written); late > window-500*time.Millisecond {
		t.Fatalf("the new owner loaded the head %v after the ids were written: too close to their expiry for the test", late)
	}
	time.Sleep(time.Until(written.Add(window + 1500*time.Millisecond))) // they expire

	r, err := s2.Append(ctx, retryRequest(t, stream, 2, ids, "a"))
	if err != nil || r.Duplicate || r.FirstVersion != first.LastVersion+2 {
		t.Fatalf("resend after its ids expired: %+v %v, want a new append at %d", r, err, first.LastVersion+2)
	}
}

// TestLowAppendSharingAChunkPastLowVersions: an append within a stream's
// first 1,024 versions is recognised past the window (README: their
// partition keeps those ids). Committed in one group with the next append
// of its stream, which crosses version 1,024, it shares that append's
// chunk, which ends past LowVersions and so kept its ids only in
// stream_ids, with the window as their TTL: an "any" retry after the
// window was written a second time.
func TestLowAppendSharingAChunkPastLowVersions(t *testing.T) {
	const window = 2 * time.Second
	o := handoverKeyspace(t, 1)
	var h holder
	s := retrySequencer(t, o, window, h.hold, nil)
	closeS := sync.OnceFunc(func() { handoverClose(s) })
	t.Cleanup(closeS)
	stream := log.StreamID("straddle-1")
	fillTo(t, s, stream, streams.LowVersions-5)
	lowIDs, highIDs := newIDs(5), newIDs(6)

	// One group: 1020..1024 and 1025..1030, one chunk.
	release := h.arm(t, s, "other-1")
	a := appendAsync(s, retryRequest(t, stream, 5, lowIDs, "low"))
	waitQueued(t, s, stream, 1)
	b := appendAsync(s, retryRequest(t, stream, 6, highIDs, "high"))
	waitQueued(t, s, stream, 2)
	release()
	ra, rb := <-a, <-b
	if ra.err != nil || rb.err != nil || ra.res.FirstVersion != streams.LowVersions-4 || rb.res.FirstVersion != streams.LowVersions+1 {
		t.Fatalf("appends: %+v %v / %+v %v", ra.res, ra.err, rb.res, rb.err)
	}
	streamVersion(t, s, stream)
	time.Sleep(window + 1500*time.Millisecond) // the window has passed

	r, err := s.Append(context.Background(), retryRequest(t, stream, 5, lowIDs, "low"))
	if err != nil || !r.Duplicate || r.FirstVersion != ra.res.FirstVersion {
		t.Fatalf("any retry of the low append past the window: %+v %v, want a duplicate at %d", r, err, ra.res.FirstVersion)
	}
	// A new owner, which loads the head's ids from the partitions.
	closeS()
	s2 := retrySequencer(t, o, window, nil, nil)
	t.Cleanup(func() { handoverClose(s2) })
	r, err = s2.Append(context.Background(), retryRequest(t, stream, 5, lowIDs, "low"))
	if err != nil || !r.Duplicate || r.FirstVersion != ra.res.FirstVersion {
		t.Fatalf("any retry after a change of owner: %+v %v, want a duplicate at %d", r, err, ra.res.FirstVersion)
	}
	if v := streamVersion(t, s2, stream); v != rb.res.LastVersion {
		t.Fatalf("stream at version %d, want %d", v, rb.res.LastVersion)
	}
}

// TestRetryWhileABucketOpens: an "any" retry whose original is in the
// stream's previous bucket is a duplicate, even when an earlier append of
// its group opens the next bucket. Its check looked for the ids only
// where the group leaves the stream (the new bucket and the one before),
// not where they were found, and refused the retry as ids committed but
// not readable (409), where decided a moment earlier it was a duplicate.
func TestRetryWhileABucketOpens(t *testing.T) {
	o := handoverKeyspace(t, 1)
	var h holder
	s := retrySequencer(t, o, time.Hour, h.hold, func(c *Config) { c.Policy.MaxEvents = 10 })
	t.Cleanup(func() { handoverClose(s) })
	ctx := context.Background()
	stream := log.StreamID("opening-1")
	ids := newIDs(2)
	orig, err := s.Append(ctx, retryRequest(t, stream, 2, ids, "a"))
	if err != nil || orig.FirstVersion != 1 {
		t.Fatalf("original: %+v %v", orig, err)
	}
	// Bucket 0 holds versions 1-10, bucket 1 11-20: both full.
	for _, n := range []int{8, 10} {
		if _, err := s.Append(ctx, retryRequest(t, stream, n, nil, "fill")); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.Append(ctx, retryRequest(t, stream, 2, ids, "a")); err != nil || !r.Duplicate || r.FirstVersion != 1 {
		t.Fatalf("retry, the original in the previous bucket: %+v %v, want a duplicate at 1", r, err)
	}
	// One group: an append that opens bucket 2, then the retry.
	release := h.arm(t, s, "other-1")
	a := appendAsync(s, retryRequest(t, stream, 1, nil, "opens"))
	waitQueued(t, s, stream, 1)
	b := appendAsync(s, retryRequest(t, stream, 2, ids, "a"))
	waitQueued(t, s, stream, 2)
	release()
	ra, rb := <-a, <-b
	if ra.err != nil || ra.res.FirstVersion != 21 {
		t.Fatalf("append opening bucket 2: %+v %v", ra.res, ra.err)
	}
	if rb.err != nil || !rb.res.Duplicate || rb.res.FirstVersion != 1 {
		t.Fatalf("retry in the group that opens a bucket: %+v %v, want a duplicate at 1", rb.res, rb.err)
	}
	if v := streamVersion(t, s, stream); v != 21 {
		t.Fatalf("stream at version %d, want 21", v)
	}
}

// TestLowIDsHeldTwoBucketsOn: an "any" retry of an append within the
// stream's first 1,024 versions is recognised past the window (README:
// their partition keeps those ids), also by a head that loaded them and
// stayed loaded while the stream moved two buckets on. Such a head took
// the low ids as committed at its read; the retry's check looked for them
// only in the current and previous bucket, found nothing, and, the read
// being within the window, refused it as ids committed but not readable
// (409 idempotency_conflict), though the original was committed a window
// before and is stored, whole, at the version the head knew.
func TestLowIDsHeldTwoBucketsOn(t *testing.T) {
	const window = 2 * time.Second
	o := handoverKeyspace(t, 1)
	small := func(c *Config) { c.Policy.MaxEvents = 10 }
	s := retrySequencer(t, o, window, nil, small)
	closeS := sync.OnceFunc(func() { handoverClose(s) })
	t.Cleanup(closeS)
	ctx := context.Background()
	stream := log.StreamID("lowheld-1")
	ids := newIDs(2)
	orig, err := s.Append(ctx, retryRequest(t, stream, 2, ids, "a"))
	if err != nil || orig.FirstVersion != 1 {
		t.Fatalf("original: %+v %v", orig, err)
	}
	streamVersion(t, s, stream)
	time.Sleep(window + 1500*time.Millisecond) // the window has passed

	// A new owner loads the head (bucket 0, the low ids with it), then the
	// stream fills bucket 0 (1-10) and 1 (11-20) and opens 2.
	closeS()
	s2 := retrySequencer(t, o, window, nil, small)
	t.Cleanup(func() { handoverClose(s2) })
	for _, n := range []int{8, 10, 1} {
		if _, err := s2.Append(ctx, retryRequest(t, stream, n, nil, "fill")); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s2.Append(ctx, retryRequest(t, stream, 2, ids, "a"))
	if err != nil || !r.Duplicate || r.FirstVersion != 1 {
		t.Fatalf("any retry of the low append, two buckets on: %+v %v, want a duplicate at 1", r, err)
	}
	if v := streamVersion(t, s2, stream); v != 21 {
		t.Fatalf("stream at version %d, want 21", v)
	}
}
