package cassandra

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// Group commit. Appends to one stream can only commit one after another:
// each conditions on the head the previous one left. Rather than let
// concurrent appends on this instance race their conditional writes (each
// loser pays a Paxos round and a head read), they queue per stream, and
// whoever finds the queue idle commits everything waiting as one
// conditional batch. Each append keeps its own atomicity, expected-version
// check and idempotency check: they are evaluated in queue order against
// the head the group starts from, as if the appends ran one after another,
// and the single condition on that head makes the whole evaluation and the
// write one atomic step. Writers on other instances still contend through
// the condition.

const (
	// groupMaxEvents and groupMaxBytes bound one group's batch (Cassandra
	// rejects mutations over 16 MiB); a single larger append still goes
	// alone.
	groupMaxEvents = 2000
	groupMaxBytes  = 4 << 20
	// maxRounds bounds how often an append is put back in its queue (its
	// group's write failed or the bucket had to seal first).
	maxRounds = 16
	// maxQueue bounds the appends waiting for one stream on one instance;
	// beyond it appends are refused (unavailable) rather than pile up.
	maxQueue = 4096
)

// pending is one append waiting in its stream's queue.
type pending struct {
	req    *log.AppendRequest
	ids    []uuid.UUID // client-chosen
	size   int         // data + metadata bytes
	res    log.AppendResult
	err    error
	done   chan struct{}
	rounds int
	taken  bool // in a group being committed (guarded by queues.mu)

	// Decided while planning one attempt of a group.
	final  bool     // decided by stored state: a retry of a stored append, or a conflict with one
	base   int64    // head version before it, when it is written
	sameAs *pending // an identical append earlier in the same group
	defer_ bool     // did not fit: goes back to the queue
}

func newPending(req *log.AppendRequest) *pending {
	p := &pending{req: req, ids: clientIDs(req), done: make(chan struct{})}
	for i := range req.Events {
		p.size += len(req.Events[i].Data) + len(req.Events[i].Metadata)
	}
	return p
}

type streamQueue struct {
	waiting []*pending
}

// queues holds the queue of every stream with appends in flight on this
// instance; a stream is present while a group of it is being committed.
type queues struct {
	mu sync.Mutex
	m  map[log.StreamID]*streamQueue
}

// enqueue adds p to its stream's queue. If no group of the stream is being
// committed, the caller's goroutine commits one now. It reports false when
// the queue is full.
func (s *Store) enqueue(p *pending) bool {
	stream := p.req.Stream
	s.queues.mu.Lock()
	q, busy := s.queues.m[stream]
	if !busy {
		q = &streamQueue{}
		s.queues.m[stream] = q
	}
	if len(q.waiting) >= maxQueue {
		s.queues.mu.Unlock()
		return false
	}
	q.waiting = append(q.waiting, p)
	s.queues.mu.Unlock()
	if !busy {
		s.drain(stream, q)
	}
	return true
}

// withdraw removes p from its queue if no group has taken it yet; it
// reports whether it did (then nothing of p was or will be written).
func (s *Store) withdraw(p *pending) bool {
	s.queues.mu.Lock()
	defer s.queues.mu.Unlock()
	q := s.queues.m[p.req.Stream]
	if q == nil || p.taken {
		return false
	}
	for i, w := range q.waiting {
		if w == p {
			q.waiting = append(q.waiting[:i:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// drain commits one group of q, then hands the rest to a new goroutine so
// the caller returns with its own result.
func (s *Store) drain(stream log.StreamID, q *streamQueue) {
	s.queues.mu.Lock()
	group := takeGroup(q)
	s.queues.mu.Unlock()

	again := s.commitGroup(stream, group)

	s.queues.mu.Lock()
	for _, p := range again {
		p.taken = false
	}
	q.waiting = append(again, q.waiting...)
	if len(q.waiting) == 0 {
		delete(s.queues.m, stream)
		s.queues.mu.Unlock()
		return
	}
	s.queues.mu.Unlock()
	go s.drain(stream, q)
}

// takeGroup removes the longest prefix of q's queue within the group bounds
// (at least one append).
func takeGroup(q *streamQueue) []*pending {
	n, events, bytes := 0, 0, 0
	for _, p := range q.waiting {
		e := len(p.req.Events)
		if n > 0 && (events+e > groupMaxEvents || bytes+p.size > groupMaxBytes) {
			break
		}
		n, events, bytes = n+1, events+e, bytes+p.size
	}
	group := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	for _, p := range group {
		p.taken = true
	}
	return group
}

// commitGroup commits group and reports each append's outcome, except for
// those it returns, which go back to the front of the queue.
func (s *Store) commitGroup(stream log.StreamID, group []*pending) (again []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.o.Timeout)
	defer cancel()
	finish := func(ps []*pending) {
		for _, p := range ps {
			if p.defer_ {
				if p.rounds++; p.rounds < maxRounds {
					again = append(again, p)
					continue
				}
				p.err = fmt.Errorf("append to %s: %w: no room after %d rounds", stream, log.ErrUnavailable, p.rounds)
			}
			close(p.done)
		}
	}
	failAll := func(err error) []*pending {
		for _, p := range group {
			if !p.final {
				p.err, p.defer_ = err, false
			}
		}
		finish(group)
		return again
	}

	h, cached := s.heads.get(stream)
	if !cached {
		var err error
		if h, err = s.loadHead(ctx, stream, false); err != nil {
			return failAll(err)
		}
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur := h.LastVersion
		// Retries are recognised against the state at cur; the condition
		// on cur makes this check, the plan and the write one atomic step.
		if err := s.resolveStored(ctx, stream, group, h.Bucket, cur); err != nil {
			return failAll(err)
		}
		now := s.o.Now().UTC().Truncate(time.Millisecond)
		included, reload := s.plan(group, h.Head, cached, now)
		if reload {
			// A conflict is reported only against a head read from
			// Cassandra, never against this instance's cache.
			cached = false
			var err error
			if h, err = s.loadHead(ctx, stream, false); err != nil {
				return failAll(err)
			}
			continue
		}
		if len(included) == 0 {
			if !needSeal(group) {
				finish(group)
				return again
			}
			var err error
			if h, err = s.seal(ctx, stream, h); err != nil {
				return failAll(err)
			}
			continue
		}
		if !h.indexed {
			if err := s.index(ctx, stream, h.Bucket, h.FirstVersion); err != nil {
				return failAll(err)
			}
			h.indexed = true
		}
		if err := s.recordIDs(ctx, stream, included, h.Bucket); err != nil {
			return failAll(err)
		}
		// The intent is recorded before the write, and may move the commit
		// time forward past the feeds' watermark (feeds.go).
		in, err := s.openIntent(ctx, stream, h, included, partition.EventTime(h.Head, now))
		if err != nil {
			return failAll(err)
		}
		at := in.at
		applied, err := s.write(ctx, stream, h, included, at, now)
		if err != nil {
			if errors.Is(err, log.ErrUnavailable) {
				s.feeds.void(s, in) // proven not sent: nothing to wait for
			}
			// Otherwise the intent stays open: the maintainer resolves it.
			s.heads.forget(stream)
			for _, p := range group {
				switch {
				case p.final:
				case p.sameAs != nil || isIncluded(p, included):
					p.err, p.defer_ = err, false
				default:
					// Not written by this batch: evaluate again after a
					// fresh head read.
					p.err, p.defer_ = nil, true
				}
			}
			finish(group)
			return again
		}
		if applied {
			s.feeds.committed(s, in, feedEventsOf(stream, included, at))
			last := included[len(included)-1]
			next := h
			next.LastVersion = last.base + int64(len(last.req.Events))
			next.LastTime = at
			if !h.Created {
				next.Created, next.OpenedAt = true, now
			}
			s.heads.put(stream, next)
			s.watchers.Notify(stream)
			s.metrics.batches.Inc()
			s.metrics.batchAppends.Add(float64(len(included)))
			if s.afterBatch != nil {
				s.afterBatch(len(included))
			}
			for _, p := range group {
				switch {
				case p.final, p.defer_, p.err != nil:
				case p.sameAs != nil:
					p.res = result(p.req, p.sameAs.base+1, true)
					p.res.Time = at
				default:
					p.res = result(p.req, p.base+1, false)
					p.res.Time = at
				}
			}
			finish(group)
			return again
		}
		s.feeds.void(s, in)
		s.metrics.casConflicts.Inc()
		if err := backoff(ctx, attempt); err != nil {
			return failAll(fmt.Errorf("append to %s: %w: %v", stream, log.ErrUnavailable, err))
		}
		cached = false
		if h, err = s.loadHead(ctx, stream, false); err != nil {
			return failAll(err)
		}
	}
	s.heads.forget(stream)
	return failAll(fmt.Errorf("append to %s: %w: gave up after %d contended attempts", stream, log.ErrUnavailable, maxAttempts))
}

func isIncluded(p *pending, included []*pending) bool {
	for _, q := range included {
		if q == p {
			return true
		}
	}
	return false
}

func needSeal(group []*pending) bool {
	for _, p := range group {
		if p.defer_ {
			return true
		}
	}
	return false
}

// plan decides, in queue order, what happens to each append not already
// decided by stored state, as if they ran one after another from head h:
// written (returned in order, each with its base), a retry of an earlier
// one in the group (sameAs), a conflict, or deferred because the bucket is
// full. reload asks for a fresh head: an expected version failed against a
// cached one.
func (s *Store) plan(group []*pending, h partition.Head, cached bool, now time.Time) (included []*pending, reload bool) {
	next := h.LastVersion
	room := s.policy.MaxEvents - h.Rows() // events that fit in h's bucket
	if h.Created && s.policy.MustSeal(h, 0, now) {
		room = 0 // sealed, or its window has ended
	}
	owner := map[uuid.UUID]*pending{}
	deferring := false
	for _, p := range group {
		p.base, p.sameAs, p.defer_ = 0, nil, false
		if p.final {
			continue
		}
		p.err = nil
		if deferring {
			// Keep queue order: nothing overtakes an append that waits
			// for the bucket to seal.
			p.defer_ = true
			continue
		}
		if q := overlap(p, owner); q != nil {
			if sameRequest(p.req, q.req) {
				p.sameAs = q
			} else {
				p.err = fmt.Errorf("append to %s: %w: its event ids are in another append being written", p.req.Stream, log.ErrIdempotencyConflict)
			}
			continue
		}
		if !p.req.Expected.Matches(next) {
			if cached {
				return nil, true
			}
			p.err = &log.WrongExpectedVersionError{Stream: p.req.Stream, Expected: p.req.Expected, Current: next}
			continue
		}
		n := int64(len(p.req.Events))
		// A bucket not yet created takes its first append whatever its
		// size, so an append larger than the cap still finds a home.
		if n > room && (h.Created || len(included) > 0) {
			p.defer_, deferring = true, true
			continue
		}
		p.base = next
		next += n
		room -= n
		included = append(included, p)
		for _, id := range p.ids {
			owner[id] = p
		}
	}
	return included, false
}

// overlap returns the append in the group that already claims one of p's
// ids.
func overlap(p *pending, owner map[uuid.UUID]*pending) *pending {
	for _, id := range p.ids {
		if q := owner[id]; q != nil {
			return q
		}
	}
	return nil
}

// sameRequest reports whether a and b are the same append: same events
// with the same ids and payloads in the same order.
func sameRequest(a, b *log.AppendRequest) bool {
	if len(a.Events) != len(b.Events) {
		return false
	}
	for i := range a.Events {
		ea, eb := &a.Events[i], &b.Events[i]
		if !ea.ClientID || !eb.ClientID {
			return false
		}
		rec := log.RecordedEvent{ID: eb.ID, Type: eb.Type, Data: eb.Data, Metadata: eb.Metadata}
		if !rec.SamePayload(ea) {
			return false
		}
	}
	return true
}

// write sends the group as one conditional batch on the head bucket's
// partition.
func (s *Store) write(ctx context.Context, stream log.StreamID, h head, included []*pending, at, now time.Time) (bool, error) {
	cur := h.LastVersion
	lastP := included[len(included)-1]
	last := lastP.base + int64(len(lastP.req.Events))
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	if h.Created {
		b.Query(cqlAppendHead, last, at, string(stream), h.Bucket, cur, fenceArg(h.fence))
	} else {
		b.Query(cqlOpenBucket, h.FirstVersion, last, at, now, string(stream), h.Bucket, fenceArg(h.fence))
	}
	for _, p := range included {
		first, end := p.base+1, p.base+int64(len(p.req.Events))
		for i := range p.req.Events {
			ev := &p.req.Events[i]
			var meta []byte
			if len(ev.Metadata) > 0 {
				meta = ev.Metadata
			}
			b.Query(cqlInsert, string(stream), h.Bucket, first+int64(i), [16]byte(ev.ID), ev.Type, at, []byte(ev.Data), meta, first, end)
		}
	}
	if s.o.BeforeWrite != nil {
		s.o.BeforeWrite()
	}
	applied, iter, err := b.MapExecCASContext(ctx, map[string]any{})
	if iter != nil {
		if cerr := iter.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.metrics.storageError("append")
		return false, casErr("append", err)
	}
	return applied, nil
}

// fenceArg binds a fence in a condition: nil (null) until a repairer sets
// one.
func fenceArg(f int64) any {
	if f == 0 {
		return nil
	}
	return f
}
