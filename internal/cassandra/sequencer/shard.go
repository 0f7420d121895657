package sequencer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// shard is one shard this instance owns: its queue, its commit goroutine
// (run) and its fill goroutine (fill).
type shard struct {
	s     *Sequencer
	id    int
	epoch int64

	// Owned by the commit goroutine.
	segment  int64
	seq      int64     // last committed seq
	lastTime time.Time // commit time of seq, or the floor set after it (no commit may be before it)
	lastLog  time.Time // when the log last got a commit or a floor (local clock)
	heads    *heads

	// pre holds head loads started when an append for an uncached
	// stream is queued, so the commit goroutine rarely waits for a read.
	pmu sync.Mutex
	pre map[log.StreamID]*preload

	tail      *tail
	filled    atomic.Int64 // last seq whose chunks are written
	committed atomic.Int64 // last committed seq (sh.seq, for other goroutines)

	mu       sync.Mutex
	queue    []*pending
	stopped  bool
	draining bool // handing over: no new appends
	// committing: a batch is taken from the queue and not yet decided (a
	// drain waits for it: committed moves only once it is).
	committing bool
	// The streams of the batch being committed, and a channel closed once
	// it is decided (its records in the tail): its commit time is taken
	// before its conditional write, so a read as of a later moment waits
	// for it (flushStream). Reused batch after batch.
	batchStreams []log.StreamID
	decided      chan struct{}
	// cached mirrors the keys of heads for submit, which holds mu anyway:
	// a sync.Map's lookup was 2 % of a 1-event append's server CPU.
	cached map[log.StreamID]struct{}
	// leaseFrom is when (monotonic) the last claim or renewal that applied
	// was sent: no other instance can claim the shard before a TTL past
	// it (claims judge a lease by seeing it unchanged for a TTL, and are
	// conditioned on it), so until then no other owner can have
	// acknowledged an append this instance's flush would not write.
	leaseFrom time.Time
	renewMu   sync.Mutex    // one renewal at a time from flushes (renewStale)
	wake      chan struct{} // cap 1
	jobs      chan []*check // each decided batch's retry checks, for the checker
	lost      chan struct{} // closed when the shard stops
	once      sync.Once
	workers   sync.WaitGroup
	done      chan struct{} // closed when its goroutines have ended
	stopErr   error
}

// check is an append whose ids or expected version point at stored
// events: once everything before it is filled, the stream is read to tell
// a retry (duplicate) from a conflict.
type check struct {
	p       *pending
	version int64   // the stream's version when decided
	buckets []int64 // where its ids are recorded (the current and previous bucket, before and after its batch)
	// idsAt is when the newest of its ids the owner knew of was
	// committed (zero: none known, an exact-version check).
	idsAt time.Time
	// low are the versions of its ids the head held at or below
	// streams.LowVersions: kept for good, so the check reads them where
	// they are, in whatever bucket (their time in the head may be that of
	// the read that loaded them, not of their commit).
	low []int64
}

func newShard(s *Sequencer, id int, epoch int64) *shard {
	return &shard{
		s: s, id: id, epoch: epoch, heads: newHeads(s.cfg.HeadCache, max(1, s.cfg.IDBudget/s.cfg.Shards)),
		wake: make(chan struct{}, 1), jobs: make(chan []*check, 256),
		lost: make(chan struct{}), done: make(chan struct{}),
		pre: map[log.StreamID]*preload{}, cached: map[log.StreamID]struct{}{}, tail: newTail(),
	}
}

// start runs the shard's goroutines: commits, checks and the filler.
func (sh *shard) start() {
	sh.workers.Add(3)
	go func() { defer sh.workers.Done(); sh.run() }()
	go func() { defer sh.workers.Done(); sh.checker() }()
	go func() { defer sh.workers.Done(); sh.filler() }()
	go func() { sh.workers.Wait(); close(sh.done) }()
}

// preload is a head being read ahead of its first decision.
type preload struct {
	done chan struct{}
	h    *head
	err  error
}

// preloadSem bounds the head reads in flight per shard.
var preloadSem = make(chan struct{}, 64)

// startPreload begins reading the head of an uncached stream. sh.mu is
// held.
func (sh *shard) startPreload(stream log.StreamID) {
	if _, ok := sh.cached[stream]; ok {
		return
	}
	sh.pmu.Lock()
	if sh.pre[stream] != nil {
		sh.pmu.Unlock()
		return
	}
	pl := &preload{done: make(chan struct{}), h: &head{stream: stream, ids: map[uuid.UUID]idAt{}}}
	sh.pre[stream] = pl
	sh.pmu.Unlock()
	sh.s.background.Go(func() {
		preloadSem <- struct{}{}
		defer func() { <-preloadSem }()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		pl.err = sh.loadHead(ctx, pl.h)
		close(pl.done)
	})
}

// takePreload returns and forgets the read-ahead of stream, if any.
func (sh *shard) takePreload(stream log.StreamID) *preload {
	sh.pmu.Lock()
	defer sh.pmu.Unlock()
	pl := sh.pre[stream]
	delete(sh.pre, stream)
	return pl
}

// submit queues p; false when the shard stopped or the queue is full.
func (sh *shard) submit(p *pending, front bool) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.stopped || sh.draining && !front {
		return errStopped
	}
	if len(sh.queue) >= sh.s.cfg.QueueLimit && !front {
		return fmt.Errorf("shard %d: %w: %d appends queued", sh.id, log.ErrUnavailable, len(sh.queue))
	}
	if front {
		sh.queue = append([]*pending{p}, sh.queue...)
	} else {
		sh.queue = append(sh.queue, p)
		sh.startPreload(p.req.Stream)
	}
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	return nil
}

var errStopped = errors.New("shard not owned here")

// stop ends the shard's commits: err explains why (nil: a clean release).
func (sh *shard) stop(err error) {
	sh.once.Do(func() {
		sh.mu.Lock()
		sh.stopped, sh.stopErr = true, err
		q := sh.queue
		sh.queue = nil
		sh.mu.Unlock()
		for _, p := range q {
			if p.state.CompareAndSwap(queued, taken) {
				// Never sent: the append looks for the shard's next owner
				// (Sequencer.append retries on errStopped).
				p.finish(log.AppendResult{}, fmt.Errorf("append to %s: %w: %w: shard %d stopped (nothing written)", p.req.Stream, log.ErrUnavailable, errStopped, sh.id))
			}
		}
		close(sh.lost)
	})
}

// raiseFloor sets the log's floor to now on a shard with nothing to
// commit: every later commit is at or after it (lastTime), so a feed read
// may count the shard complete up to it, where it would otherwise stop at
// the shard's last commit (or, with none, at the floor its log was opened
// with) and hold every feed's complete_up_to there.
// Not applied means the segment moved to a newer owner: the shard stops.
// An error leaves the outcome unknown, which is harmless: lastTime keeps
// commits at or after the floor either way, and the next idle period
// tries again.
func (sh *shard) raiseFloor() error {
	sh.lastLog = time.Now()
	t := sh.s.cfg.Now().UTC().Truncate(time.Millisecond)
	if !t.After(sh.lastTime) {
		return nil // a clock behind the log's time: the floor is there already
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	applied, err := sh.s.cfg.Log.SetFloor(ctx, sh.id, sh.segment, sh.epoch, sh.seq, t)
	sh.lastTime = t
	switch {
	case err != nil:
		sh.s.cfg.Logger.Warn("raising the shard's floor failed", "shard", sh.id, "err", err)
		return nil
	case !applied:
		return fmt.Errorf("shard %d: %w", sh.id, shardlog.ErrFenced)
	}
	return nil
}

// takeover fences the shard's log under sh.epoch, starting from the
// segment hint, and fills every committed record not yet filled. It must
// finish before the first decision.
func (sh *shard) takeover(ctx context.Context, hint int64) error {
	lg, rows := sh.s.cfg.Log, sh.s.cfg.SegmentRows
	g := hint
	minFilled := int64(-1)
	// The highest floor seen: an owner before us may have raised it past
	// its last commit (raiseFloor), and we commit nothing before it.
	var floor time.Time
	keepFloor := func(st shardlog.Statics) {
		if st.Floor.After(floor) {
			floor = st.Floor
		}
	}
	atFloor := func() {
		if floor.After(sh.lastTime) {
			sh.lastTime = floor
		}
		sh.lastLog = time.Now() // the first raise after FloorEvery idle
	}
	for {
		st, err := lg.Statics(ctx, sh.id, g, false)
		if err != nil {
			return err
		}
		keepFloor(st)
		if st.Exists && st.Epoch > sh.epoch {
			return fmt.Errorf("shard %d: %w: segment %d at epoch %d", sh.id, shardlog.ErrFenced, g, st.Epoch)
		}
		if !st.Exists {
			// The previous segment is full (or g is 0 and the log is new):
			// fill what is unfilled before opening the next one, so a
			// segment's filled static never claims rows it does not hold.
			last := g * rows
			if minFilled < 0 {
				minFilled = last
			}
			if err := sh.catchUp(ctx, minFilled, last); err != nil {
				return err
			}
			atFloor()
			if g == 0 {
				// A new log: no commit yet bounds the shard's next one,
				// so open it with a floor at our clock, or a feed read
				// could promise nothing until the first raise.
				if t := sh.s.cfg.Now().UTC().Truncate(time.Millisecond); t.After(sh.lastTime) {
					sh.lastTime = t
				}
			}
			applied, err := lg.Open(ctx, sh.id, g, sh.epoch, last, last, sh.lastTime)
			if err != nil {
				return err
			}
			if !applied {
				continue // opened meanwhile (by the old owner): fence it
			}
			sh.segment, sh.seq = g, last
			sh.filled.Store(last)
			sh.committed.Store(last)
			return nil
		}
		if minFilled < 0 || st.Filled < minFilled {
			minFilled = st.Filled
		}
		if st.Epoch < sh.epoch {
			if _, err := lg.Fence(ctx, sh.id, g, sh.epoch); err != nil {
				return err
			}
			continue // read it again: fenced by us, or by someone newer
		}
		// Ours. A SERIAL read settles any commit of the old owner still
		// in flight before we read how far the log goes.
		st, err = lg.Statics(ctx, sh.id, g, true)
		if err != nil {
			return err
		}
		keepFloor(st)
		if st.Epoch != sh.epoch {
			continue
		}
		if st.LastSeq >= (g+1)*rows {
			g++ // full: the log goes on in the next segment
			continue
		}
		if err := sh.catchUp(ctx, minFilled, st.LastSeq); err != nil {
			return err
		}
		atFloor()
		sh.segment, sh.seq = g, st.LastSeq
		sh.filled.Store(st.LastSeq)
		sh.committed.Store(st.LastSeq)
		return nil
	}
}

// catchUp fills the records after seq `after` through `last`, in order,
// and leaves sh.lastTime at the commit time of `last`.
func (sh *shard) catchUp(ctx context.Context, after, last int64) error {
	lg, rows := sh.s.cfg.Log, sh.s.cfg.SegmentRows
	from := max(after-1, 0) // read row `after` too, for its time
	for g := shardlog.Segment(from+1, rows); from < last; g++ {
		_, _, err := lg.Rows(ctx, sh.id, g, from, last, 256, func(r shardlog.Row) error {
			from = r.Seq
			sh.lastTime = r.Time
			if r.Seq <= after {
				return nil
			}
			rec, err := record.DecodeRecord(r.Record)
			if err == nil {
				// Its names whole, before they are written to the stream
				// partitions and the catalog (the decoder checks only
				// their lengths: record.CheckNames).
				err = rec.CheckNames()
			}
			if err != nil {
				return &log.CorruptError{Kind: log.CorruptLogRecord, Shard: sh.id, Segment: g, Seq: r.Seq, Err: err}
			}
			ps := pendingOf(r.Seq, r.Time, &rec)
			if err := sh.s.cfg.Streams.Fill(ctx, ps); err != nil {
				return err
			}
			sh.s.blocks.writtenRecord(ps)
			if sh.s.cfg.Index == nil {
				return nil
			}
			return sh.s.cfg.Index.Write(ctx, sh.id, ps)
		})
		if err != nil {
			return err
		}
		if from < (g+1)*rows && from < last {
			return fmt.Errorf("shard %d: log ends at seq %d in segment %d, want %d: %w", sh.id, from, g, last, log.ErrUnavailable)
		}
	}
	return nil
}

// run is the commit goroutine.
func (sh *shard) run() {
	defer close(sh.jobs)
	for {
		if !sh.tailRoom() {
			return
		}
		batch, release := sh.collect()
		if batch == nil {
			return
		}
		err := sh.commitBatch(batch)
		if err != nil {
			// Stopped before the batch's readers wake: an unknown outcome
			// may still land, and only the next owner can tell.
			sh.stop(err)
		}
		sh.mu.Lock()
		sh.committing = false
		sh.batchStreams = sh.batchStreams[:0]
		close(sh.decided)
		sh.mu.Unlock()
		release()
		if err != nil {
			sh.s.cfg.Logger.Warn("shard stopped", "shard", sh.id, "epoch", sh.epoch, "err", err)
			return
		}
	}
}

// collect waits for queued appends and a commit slot, and takes up to a
// group's worth; release gives the slot back. While the slot is awaited
// the queue grows, so an instance owning many shards still commits large
// groups.
func (sh *shard) collect() (batch []*pending, release func()) {
	for {
		sh.mu.Lock()
		stopped, n := sh.stopped, len(sh.queue)
		sh.mu.Unlock()
		if stopped {
			return nil, nil
		}
		if n == 0 {
			idle := time.NewTimer(max(0, sh.s.cfg.FloorEvery-time.Since(sh.lastLog)))
			select {
			case <-sh.wake:
			case <-sh.lost:
			case <-idle.C:
				if err := sh.raiseFloor(); err != nil {
					idle.Stop()
					sh.s.cfg.Logger.Warn("shard stopped", "shard", sh.id, "epoch", sh.epoch, "err", err)
					sh.stop(err)
					return nil, nil
				}
			}
			idle.Stop()
			continue
		}
		release := sh.s.commitSlot(sh.lost)
		if release == nil {
			return nil, nil
		}
		var out []*pending
		sh.mu.Lock()
		size, i := 0, 0
		for i < len(sh.queue) && len(out) < sh.s.cfg.MaxGroupAppends {
			p := sh.queue[i]
			if len(out) > 0 && size+p.size > sh.s.cfg.MaxGroupBytes {
				break
			}
			i++
			if !p.state.CompareAndSwap(queued, taken) {
				continue // its caller left
			}
			out = append(out, p)
			size += p.size
		}
		sh.queue = sh.queue[i:]
		sh.committing = len(out) > 0
		if sh.committing {
			for _, p := range out {
				sh.batchStreams = append(sh.batchStreams, p.req.Stream)
			}
			sh.decided = make(chan struct{})
		}
		sh.s.metrics.queueLength.Observe(float64(len(sh.queue) + len(out)))
		sh.mu.Unlock()
		if len(out) > 0 {
			return out, release
		}
		release()
	}
}

// drain waits until the queue is committed and filled (or ctx ends), then
// stops the shard.
func (sh *shard) drain(ctx context.Context) {
	sh.mu.Lock()
	sh.draining = true
	sh.mu.Unlock()
	for {
		sh.mu.Lock()
		n, busy := len(sh.queue), sh.committing
		sh.mu.Unlock()
		if n == 0 && !busy && sh.filled.Load() >= sh.committed.Load() {
			break
		}
		sh.flushAll()
		select {
		case <-ctx.Done():
			sh.stop(ctx.Err())
			<-sh.done
			return
		case <-sh.lost:
			<-sh.done
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	sh.stop(nil)
	sh.mu.Lock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	sh.mu.Unlock()
	<-sh.done
}
