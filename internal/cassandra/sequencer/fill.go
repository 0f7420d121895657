package sequencer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// fillRetryFor bounds how long a committed record's fill is retried once
// the shard is stopping; until then it is retried for as long as it takes
// (its appends are committed: they are answered only once readable).
const fillRetryFor = 30 * time.Second

// fillsInFlight bounds the records one shard fills at once. Fills of
// records that share no stream run in parallel, so a slow fill does not
// hold the commits behind it; a record touching a stream still being
// filled waits, so each stream's chunks are written in log order.
const fillsInFlight = 4

// fill is the fill stage: it starts each job's fill in log order (at most
// fillsInFlight at once, never two for one stream), and finishes the jobs
// in log order: once a job's fill and every earlier one are done, it
// advances filled, runs the job's retry checks (which read the stream
// partitions, complete up to the job) and answers.
func (sh *shard) fill() {
	defer close(sh.done)
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		inFlight = map[log.StreamID]int{}
		running  int
	)
	ordered := make(chan *job, fillsInFlight)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sh.finish(ordered)
	}()
	for j := range sh.jobs {
		j.filled = make(chan error, 1)
		if j.rec == nil {
			j.filled <- nil
			ordered <- j
			continue
		}
		streams := map[log.StreamID]bool{}
		for i := range j.rec.Appends {
			streams[j.rec.Appends[i].Stream] = true
		}
		mu.Lock()
		for running >= fillsInFlight || overlaps(inFlight, streams) {
			cond.Wait()
		}
		running++
		for s := range streams {
			inFlight[s]++
		}
		mu.Unlock()
		ordered <- j
		go func() {
			start := time.Now()
			err := sh.fillRecord(j)
			sh.s.metrics.fillTime.Observe(time.Since(start).Seconds())
			mu.Lock()
			running--
			for s := range streams {
				if inFlight[s]--; inFlight[s] == 0 {
					delete(inFlight, s)
				}
			}
			cond.Broadcast()
			mu.Unlock()
			j.filled <- err
		}()
	}
	close(ordered)
	<-finished
}

func overlaps(inFlight map[log.StreamID]int, streams map[log.StreamID]bool) bool {
	for s := range streams {
		if inFlight[s] > 0 {
			return true
		}
	}
	return false
}

// finish completes jobs in log order.
func (sh *shard) finish(ordered <-chan *job) {
	broken := false
	for j := range ordered {
		err := <-j.filled
		if broken {
			sh.failAll(append(j.answers, checksOf(j)...), fmt.Errorf("shard %d: %w: an earlier commit could not be filled", sh.id, log.ErrOutcomeUnknown))
			continue
		}
		if err != nil {
			// Committed but not readable: the next owner's catch-up
			// fills it; until then its outcome is unknown to callers.
			sh.s.cfg.Logger.Error("fill failed; stopping shard", "shard", sh.id, "seq", j.seq, "err", err)
			broken = true
			sh.failAll(append(j.answers, checksOf(j)...), fmt.Errorf("shard %d: %w: committed, not yet readable: %v", sh.id, log.ErrOutcomeUnknown, err))
			sh.stop(err)
			continue
		}
		if j.rec != nil {
			sh.filled.Store(j.seq)
		}
		for _, c := range j.checks {
			sh.runCheck(c)
		}
		for _, p := range j.answers {
			select {
			case <-p.done:
			default:
				close(p.done)
			}
		}
		if f := sh.s.cfg.OnCommit; f != nil && j.rec != nil {
			for i := range j.rec.Appends {
				f(j.rec.Appends[i].Stream)
			}
		}
		if f := sh.s.cfg.OnRecord; f != nil && j.rec != nil {
			f(sh.id)
		}
	}
}

func (sh *shard) fillRecord(j *job) error {
	var stopSince time.Time
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := sh.s.cfg.Streams.Fill(ctx, j.seq, j.time, j.rec)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-sh.lost:
			if stopSince.IsZero() {
				stopSince = time.Now()
			} else if time.Since(stopSince) > fillRetryFor {
				return err
			}
		default:
		}
		sh.s.cfg.Logger.Warn("fill failed, retrying", "shard", sh.id, "seq", j.seq, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// runCheck answers an append whose ids or expected version point at stored
// events: a whole earlier append is a duplicate; some of its ids stored is
// a conflict; none, for an exact expected version, is a version conflict,
// and for the others (ids out of the window by now) a new append.
func (sh *shard) runCheck(c *check) {
	p := c.p
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	m, err := sh.s.cfg.Streams.MatchAppend(ctx, &p.req, c.version, c.buckets)
	switch {
	case err != nil:
		p.finish(log.AppendResult{}, err)
	case m.Duplicate:
		res := result(&p.req, m.FirstVersion, true)
		res.Time = m.Time.UTC()
		p.finish(res, nil)
	case m.Stored > 0:
		p.finish(log.AppendResult{}, fmt.Errorf("append to %s: %w: %d of its %d event ids are stored, not as this same append",
			p.req.Stream, log.ErrIdempotencyConflict, m.Stored, len(p.req.Events)))
	case p.req.Expected.Exact() && int64(p.req.Expected) < c.version:
		p.finish(log.AppendResult{}, &log.WrongExpectedVersionError{Stream: p.req.Stream, Expected: p.req.Expected, Current: c.version})
	case !c.idsAt.IsZero() && sh.s.cfg.Now().Sub(c.idsAt) < sh.s.cfg.IdempotencyWindow:
		// The owner committed these ids within the window but the stream
		// does not show them where they were recorded: never write them a
		// second time (no duplicates), refuse instead.
		sh.s.cfg.Logger.Error("ids committed but not found", "stream", string(p.req.Stream), "buckets", c.buckets)
		p.finish(log.AppendResult{}, fmt.Errorf("append to %s: %w: its ids were committed but cannot be read back", p.req.Stream, log.ErrIdempotencyConflict))
	default:
		// Its ids have expired: a new append. Back to the front of the
		// queue, which decides it again against the current head.
		p.fresh = true
		p.state.Store(queued)
		if err := sh.submit(p, true); err != nil {
			p.finish(log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", p.req.Stream, log.ErrUnavailable, err))
		}
	}
}
