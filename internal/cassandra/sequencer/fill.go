package sequencer

import (
	"context"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// fillRetryFor bounds how long a committed record's fill is retried once
// the shard is stopping; until then it is retried for as long as it takes
// (its appends are committed: they are answered only once readable).
const fillRetryFor = 30 * time.Second

// fill is the fill goroutine: for each job, in log order, it writes the
// chunks of the committed record, then runs the retry checks (which read
// the stream partitions, now complete up to the job), then answers.
func (sh *shard) fill() {
	defer close(sh.done)
	broken := false
	for j := range sh.jobs {
		if broken {
			sh.failAll(append(j.answers, checksOf(j)...), fmt.Errorf("shard %d: %w: an earlier commit could not be filled", sh.id, log.ErrOutcomeUnknown))
			continue
		}
		if j.rec != nil {
			start := time.Now()
			err := sh.fillRecord(j)
			sh.s.metrics.fillTime.Observe(time.Since(start).Seconds())
			if err != nil {
				// Committed but not readable: the next owner's catch-up
				// fills it; until then its outcome is unknown to callers.
				sh.s.cfg.Logger.Error("fill failed; stopping shard", "shard", sh.id, "seq", j.seq, "err", err)
				broken = true
				sh.failAll(append(j.answers, checksOf(j)...), fmt.Errorf("shard %d: %w: committed, not yet readable: %v", sh.id, log.ErrOutcomeUnknown, err))
				sh.stop(err)
				continue
			}
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
