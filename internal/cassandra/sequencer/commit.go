package sequencer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// opTimeout bounds one storage step of the commit goroutine.
const opTimeout = 10 * time.Second

// tentative is a stream's state as the appends decided so far in a batch
// leave it; it becomes the head only if the batch commits.
type tentative struct {
	version int64
	bucket  streams.Bucket
	created bool
	prev    int64
	ids     map[uuid.UUID]int64
	touched bool // an append of the batch goes to the stream
	// batch is the ids of the events the batch appends to the stream,
	// from the head's version + 1 on, kept (record) when the head records
	// its recent ids (recentIDs) as the batch starts.
	batch  []uuid.UUID
	record bool
}

// commitBatch decides, commits and hands one batch to the fill goroutine.
// An error stops the shard (after answering the batch).
func (sh *shard) commitBatch(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if failed := sh.loadHeads(ctx, batch); len(failed) > 0 {
		// A read failed: the appends to its stream are answered with its
		// error (nothing of theirs decided), the others decided without
		// them. Another stream's error is not theirs: a corrupt row
		// names its stream, which their keys may not read.
		kept := make([]*pending, 0, len(batch))
		for _, p := range batch {
			if err, ok := failed[p.req.Stream]; ok {
				p.finish(log.AppendResult{}, err)
				continue
			}
			kept = append(kept, p)
		}
		if batch = kept; len(batch) == 0 {
			return nil // the shard is fine
		}
	}
	now := sh.s.cfg.Now()
	t := now.UTC().Truncate(time.Millisecond)
	if t.Before(sh.lastTime) {
		t = sh.lastTime
	}
	var (
		rec     record.Record
		answers []*pending // decided without a commit: conflicts
		checks  []*check
		tent    = map[log.StreamID]*tentative{}
		members []*pending
	)
	for _, p := range batch {
		h := sh.heads.peek(p.req.Stream) // loadHeads marked it used
		tv := tent[p.req.Stream]
		if tv == nil {
			tv = &tentative{version: h.version, bucket: h.bucket, created: h.created, prev: h.prev, record: h.recent != nil}
			tent[p.req.Stream] = tv
		}
		// Checks run after this batch is filled: they look where the
		// batch leaves the stream (tentative), which may be where an
		// earlier append of the same batch put the ids.
		if known, at, low := sh.knownIDs(h, tv, p); known {
			// Also where the stream was before the batch, where its ids
			// were looked up: an earlier append of the batch may have
			// opened a bucket since.
			bs := bucketsOf(tv.bucket.Number, tv.prev)
			for _, b := range h.buckets() {
				if !slices.Contains(bs, b) {
					bs = append(bs, b)
				}
			}
			checks = append(checks, &check{p: p, version: tv.version, buckets: bs, idsAt: at, low: low})
			continue
		}
		cur := tv.version
		if e := p.req.Expected; e.Exact() && int64(e) < cur {
			if len(p.ids) > 0 && !notAt(h, tv, int64(e)+1, min(int64(e)+int64(len(p.req.Events)), cur), p.ids) {
				sh.heads.makeRecent(h) // recording from the next batch on
				checks = append(checks, &check{p: p, version: cur, buckets: bucketsOf(tv.bucket.Number, tv.prev)})
				continue
			}
			p.err = &log.WrongExpectedVersionError{Stream: p.req.Stream, Expected: e, Current: cur}
			answers = append(answers, p)
			continue
		}
		if !p.req.Expected.Matches(cur) {
			p.err = &log.WrongExpectedVersionError{Stream: p.req.Stream, Expected: p.req.Expected, Current: cur}
			answers = append(answers, p)
			continue
		}
		a := record.Append{Stream: p.req.Stream, FirstVersion: cur + 1, ClientIDs: len(p.ids) > 0}
		ph := partition.Head{Bucket: tv.bucket.Number, FirstVersion: tv.bucket.FirstVersion, LastVersion: cur, Created: tv.created, OpenedAt: tv.bucket.OpenedAt}
		if tv.bucket.Number < 0 || sh.s.cfg.Policy.MustSeal(ph, len(p.req.Events), now) {
			if tv.bucket.Number >= 0 {
				tv.prev = tv.bucket.Number
			}
			tv.bucket = streams.Bucket{Bucket: partition.Bucket{Number: tv.bucket.Number + 1, FirstVersion: cur + 1}, OpenedAt: t}
			a.OpensBucket = true
		}
		a.Bucket = tv.bucket.Number
		a.Events = make([]record.Event, len(p.req.Events))
		for i := range p.req.Events {
			e := &p.req.Events[i]
			a.Events[i] = record.Event{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
			if tv.record {
				tv.batch = append(tv.batch, e.ID)
			}
		}
		for i, id := range p.ids {
			if tv.ids == nil {
				tv.ids = map[uuid.UUID]int64{}
			}
			tv.ids[id] = cur + 1 + int64(i)
		}
		tv.version += int64(len(p.req.Events))
		tv.created, tv.touched = true, true
		rec.Appends = append(rec.Appends, a)
		p.res = result(&p.req, cur+1, false)
		p.res.Time = t
		members = append(members, p)
	}
	if len(rec.Appends) == 0 {
		// Conflicts and checks only: confirm the shard is still ours, and
		// at the seq the decisions saw, before answering from its heads.
		st, err := sh.s.cfg.Log.Statics(ctx, sh.id, sh.segment, true)
		if err != nil || !st.Exists || st.Epoch != sh.epoch || st.LastSeq != sh.seq {
			sh.failAll(batch, fmt.Errorf("shard %d: %w: could not confirm ownership", sh.id, log.ErrUnavailable))
			if err == nil {
				err = fmt.Errorf("shard %d: %w", sh.id, shardlog.ErrFenced)
			}
			return err
		}
		sh.answer(answers, checks)
		return nil
	}
	seq := sh.seq + 1
	if seg := shardlog.Segment(seq, sh.s.cfg.SegmentRows); seg != sh.segment {
		if err := sh.openSegment(ctx, seg); err != nil {
			sh.failAll(batch, fmt.Errorf("shard %d: %w: %v (nothing written)", sh.id, log.ErrUnavailable, err))
			return err
		}
	}
	if f := sh.s.cfg.BeforeCommit; f != nil {
		f(sh.id)
	}
	c := &shardlog.Commit{
		Shard: sh.id, Segment: sh.segment, Epoch: sh.epoch, Seq: seq, Filled: sh.filled.Load(),
		Floor: t, Time: t, CommitID: uuid.New(), Record: record.AppendRecord(nil, &rec),
	}
	// The tail's encoding of the chunks is made while the round is in
	// flight, not between its answer and the next round.
	encoded := make(chan []streams.Pending, 1)
	go func() { encoded <- pendingOf(seq, t, &rec) }()
	start := time.Now()
	out, err := sh.s.cfg.Log.Commit(ctx, c)
	sh.s.metrics.commitTime.Observe(time.Since(start).Seconds())
	for attempt := 0; out == shardlog.Unknown && attempt < 5; attempt++ {
		sh.s.cfg.Logger.Warn("commit outcome unknown, settling", "shard", sh.id, "seq", seq, "err", err)
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
		sctx, scancel := context.WithTimeout(context.Background(), opTimeout)
		out, err = sh.s.cfg.Log.Settle(sctx, c)
		scancel()
	}
	// Waited for whatever the outcome: it reads the requests' events,
	// which are theirs again once answered.
	pend := <-encoded
	switch out {
	case shardlog.Committed:
		sh.lastLog = time.Now()
		sh.s.metrics.commits.WithLabelValues("committed").Inc()
		sh.s.metrics.groupSize.Observe(float64(len(members)))
	case shardlog.Fenced:
		sh.s.metrics.commits.WithLabelValues("fenced").Inc()
		sh.failAll(batch, fmt.Errorf("shard %d: %w: the shard moved to another owner (nothing written)", sh.id, log.ErrUnavailable))
		return fmt.Errorf("shard %d seq %d: %w", sh.id, seq, shardlog.ErrFenced)
	default:
		sh.s.metrics.commits.WithLabelValues("unknown").Inc()
		sh.failAll(append(answers, checksOf(checks)...), fmt.Errorf("shard %d: %w: commit outcome unknown", sh.id, log.ErrUnavailable))
		sh.failAll(members, fmt.Errorf("%w: %v", log.ErrOutcomeUnknown, err))
		return fmt.Errorf("shard %d seq %d: commit outcome unknown: %w", sh.id, seq, err)
	}
	// Committed: the tentative states become the heads.
	sh.seq, sh.lastTime = seq, t
	sh.committed.Store(seq)
	// Every record committed before the tail's oldest is filled: ids
	// committed before its time are in the stream partitions.
	filledBefore := sh.tail.oldestTime(t)
	for stream, tv := range tent {
		if !tv.touched {
			continue
		}
		h := sh.heads.peek(stream)
		if tv.record {
			h.recent.add(h.version+1, tv.batch)
		}
		h.version, h.bucket, h.created, h.prev = tv.version, tv.bucket, tv.created, tv.prev
		filterBytes := 0
		if h.filter != nil {
			filterBytes = h.filter.bytes()
			if !h.filter.rotate(h.bucket.Number, h.prev) {
				sh.heads.dropFilter(h)
			}
		}
		before := len(h.ids)
		for id, v := range tv.ids {
			h.ids[id] = newIDAt(v, t)
			if h.filter != nil {
				b := h.bucket.Number
				if v < h.bucket.FirstVersion {
					b = h.prev
				}
				h.filter.add(b, id)
			}
		}
		sh.heads.filterGrew(h, filterBytes)
		h.lastSeq = seq
		h.pruneIDs(now, sh.s.cfg.IdempotencyWindow, sh.s.cfg.IDsInHead*2, filledBefore, sh.heads.makeFilter)
		sh.heads.ids += len(h.ids) - before
	}
	// Committed is acknowledged: the filler writes the record behind, and
	// every read of its streams waits for that (flushStream).
	sh.s.metrics.tailBytes.Add(float64(sh.tail.add(seq, time.Now(), t, pend)))
	sh.tail.poke()
	sh.answer(append(answers, members...), checks)
	if f := sh.s.cfg.OnCommit; f != nil {
		for i := range rec.Appends {
			f(rec.Appends[i].Stream)
		}
	}
	if f := sh.s.cfg.OnRecord; f != nil {
		f(sh.id)
	}
	sh.heads.evict(sh.filled.Load(), func(s log.StreamID) {
		sh.mu.Lock()
		delete(sh.cached, s)
		sh.mu.Unlock()
	})
	return nil
}

// answer closes the answers decided (their results are set) and hands
// the retry checks to the checker.
func (sh *shard) answer(answers []*pending, checks []*check) {
	for _, p := range answers {
		select {
		case <-p.done:
		default:
			close(p.done)
		}
	}
	if len(checks) > 0 {
		sh.jobs <- checks
	}
}

func checksOf(checks []*check) []*pending {
	out := make([]*pending, len(checks))
	for i, c := range checks {
		out[i] = c.p
	}
	return out
}

// failAll answers every pending of ps that has no answer yet with err.
func (sh *shard) failAll(ps []*pending, err error) {
	for _, p := range ps {
		select {
		case <-p.done:
		default:
			p.res, p.err = log.AppendResult{}, err
			close(p.done)
		}
	}
}

// knownIDs reports whether one of p's ids is already committed to the
// stream or claimed by an earlier append of the batch: then p is a retry
// (or a conflict), told apart once the stream is filled. For a fresh p
// the ids it was found to have expired with do not count. low are the
// versions of those at or below streams.LowVersions.
func (sh *shard) knownIDs(h *head, tv *tentative, p *pending) (known bool, newest time.Time, low []int64) {
	for _, id := range p.ids {
		if a, ok := h.ids[id]; ok && (!p.fresh || a.time().After(p.expiredAt)) {
			known = true
			if at := a.time(); at.After(newest) {
				newest = at
			}
			if a.version <= streams.LowVersions {
				low = append(low, a.version)
			}
		}
		if _, ok := tv.ids[id]; ok {
			known, newest = true, sh.s.cfg.Now()
		}
	}
	return known, newest, low
}

// openSegment continues the log in segment seg, its filled static saying
// how far the streams are written (it may point into earlier segments: a
// new owner's catch-up reads across them). It does not wait for the tail
// to be written: with 1,000-record segments and --fill-delay 20s, that
// wait stopped a shard's commits for seconds every few seconds.
func (sh *shard) openSegment(ctx context.Context, seg int64) error {
	applied, err := sh.s.cfg.Log.Open(ctx, sh.id, seg, sh.epoch, sh.seq, sh.filled.Load(), sh.lastTime)
	if err != nil {
		return err
	}
	if !applied {
		st, err := sh.s.cfg.Log.Statics(ctx, sh.id, seg, true)
		if err != nil {
			return err
		}
		if st.Epoch != sh.epoch || st.LastSeq != sh.seq {
			return fmt.Errorf("segment %d: %w", seg, shardlog.ErrFenced)
		}
	}
	sh.segment = seg
	sh.s.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		sh.s.noteSegment(ctx, sh.id, sh.epoch, seg)
	})
	return nil
}

// loadHeads makes sure every stream of batch has a head, reading the
// missing ones in parallel, and looks up the ids of appends to streams
// whose id sets are not complete in memory. It returns the streams whose
// reads failed, each with its first error: their appends cannot be
// decided (no head, or ids not looked up), the others can.
func (sh *shard) loadHeads(ctx context.Context, batch []*pending) map[log.StreamID]error {
	// The maps and the semaphore are made on first use: most commits of a
	// warm shard read nothing and fail nothing.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed map[log.StreamID]error
		sem    chan struct{}
		seen   map[log.StreamID]*head
	)
	run := func(stream log.StreamID, f func() error) {
		if sem == nil {
			sem = make(chan struct{}, 32)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(); err != nil {
				mu.Lock()
				if failed == nil {
					failed = map[log.StreamID]error{}
				}
				if failed[stream] == nil {
					failed[stream] = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range batch {
		stream := p.req.Stream
		if h := sh.heads.get(stream); h != nil || seen[stream] != nil {
			continue
		}
		h := &head{stream: stream, ids: map[uuid.UUID]idAt{}}
		if seen == nil {
			seen = map[log.StreamID]*head{}
		}
		seen[stream] = h
		if pl := sh.takePreload(stream); pl != nil {
			// Read ahead since the append was queued: the stream was not
			// cached then, and nothing committed to it since (a commit
			// would have put it in heads, which forgets read-aheads).
			run(stream, func() error {
				<-pl.done
				if pl.err == nil {
					*h = *pl.h
				}
				return pl.err
			})
			continue
		}
		run(stream, func() error { return sh.loadHead(ctx, h) })
	}
	wg.Wait()
	for stream := range failed {
		delete(seen, stream) // not loaded: read again at its next append
	}
	if len(seen) > 0 {
		sh.mu.Lock()
		for _, h := range seen {
			sh.cached[h.stream] = struct{}{}
		}
		sh.mu.Unlock()
	}
	for _, h := range seen {
		sh.heads.put(h)
		sh.takePreload(h.stream) // a read-ahead started meanwhile predates what comes next
	}
	// Streams with more ids than a head keeps: look this batch's ids up.
	// Low filters are made by the lookups and given to their heads once
	// they are all done: heads belong to this goroutine.
	var (
		building map[*head]bool // heads whose low filter this batch reads
		built    map[*head]*lowFilter
	)
	for _, p := range batch {
		mu.Lock() // the lookups started record their failures
		skip := failed[p.req.Stream] != nil
		mu.Unlock()
		if skip {
			continue // its head is not loaded, or its ids not all looked up
		}
		h := sh.heads.peek(p.req.Stream)
		if h.idsComplete || len(p.ids) == 0 || h.filter != nil && !h.filter.mayHave(p.ids) {
			continue
		}
		bs, version := h.buckets(), h.version
		if len(bs) == 0 {
			continue
		}
		sh.s.metrics.idLookups.Inc()
		noLow := h.low != nil && !h.low.mayHave(p.ids)
		build := h.low == nil && version > streams.LowVersions && !building[h] && sh.heads.lowRoom()
		if build {
			if building == nil {
				building, built = map[*head]bool{}, map[*head]*lowFilter{}
			}
			building[h] = true
		}
		if !noLow {
			sh.s.metrics.lowIDReads.Inc()
		}
		run(p.req.Stream, func() error {
			var low map[uuid.UUID]int64
			if build {
				var err error
				if low, err = sh.s.cfg.Streams.LowIDs(ctx, p.req.Stream, bs); err != nil {
					return err
				}
			}
			found, left, err := sh.s.cfg.Streams.LookupIDs(ctx, p.req.Stream, bs, version, p.ids, noLow || build)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if build {
				built[h] = lowFilterOf(h, low)
				for _, id := range p.ids {
					if v, ok := low[id]; ok {
						found[id] = v
					}
				}
			}
			before := len(h.ids)
			now := sh.s.cfg.Now()
			for id, v := range found {
				h.ids[id] = newIDAt(v, sh.loadedAt(now, left, id))
			}
			sh.heads.ids += len(h.ids) - before
			return nil
		})
	}
	wg.Wait()
	for h, f := range built {
		sh.heads.setLow(h, f)
	}
	return failed
}

// lowFilterOf makes a filter of h's stream's low ids: low, read from its
// partitions, and those of its ids the head holds. A low id committed but
// not yet written is in the head (pruneIDs keeps what is not written, and
// nothing prunes while the batch's heads are loaded), so between them
// they are all of them; the stream is past LowVersions, so no more come.
func lowFilterOf(h *head, low map[uuid.UUID]int64) *lowFilter {
	var held []uuid.UUID
	for id, a := range h.ids {
		if _, ok := low[id]; !ok && a.version <= streams.LowVersions {
			held = append(held, id)
		}
	}
	f := newLowFilter(len(low) + len(held))
	for id := range low {
		f.add(id)
	}
	for _, id := range held {
		f.add(id)
	}
	return f
}

func (sh *shard) loadHead(ctx context.Context, h *head) error {
	sh.s.metrics.headLoads.Inc()
	// Safe to read from the stream partitions: a head not in memory has
	// every commit filled (evicted ones only once filled; the others were
	// filled by the takeover's catch-up).
	st, err := sh.s.cfg.Streams.Head(ctx, h.stream)
	if err != nil {
		return err
	}
	h.version, h.created, h.prev = st.Version, st.Created, st.Prev
	h.bucket = st.Bucket
	if st.Bucket.FirstVersion == 0 { // no index row: a new stream
		h.bucket.Number = -1
	}
	if h.bucket.Number < 0 {
		h.idsComplete = true
		return nil
	}
	ids, left, complete, err := sh.s.cfg.Streams.IDs(ctx, h.stream, h.buckets(), h.version, sh.s.cfg.IDsInHead)
	if err != nil {
		return err
	}
	now := sh.s.cfg.Now()
	for id, v := range ids {
		h.ids[id] = newIDAt(v, sh.loadedAt(now, left, id))
	}
	h.idsComplete = complete
	return nil
}

// loadedAt is when a head takes an id read from the stream partitions at
// now as committed: for one read from stream_ids, a window before its
// row expires (left: how long it has to live), so that it counts as live
// exactly as long as the row; taken as committed at the read, an id read
// shortly before its row expired counted for a window more, and an "any"
// resend after the row expired was refused as ids committed but not
// readable (runCheck) instead of appended. A low id (a partition's static
// row or chunk rows), kept for good, has no expiry: the read's time.
func (sh *shard) loadedAt(now time.Time, left map[uuid.UUID]time.Duration, id uuid.UUID) time.Time {
	if d, ok := left[id]; ok {
		return now.Add(d - sh.s.cfg.IdempotencyWindow)
	}
	return now
}
