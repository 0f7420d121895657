package sequencer

import (
	"context"
	"fmt"

	"github.com/eventlog/eventlog/internal/log"
)

// checker answers the retry checks of each decided batch, in order: a
// check reads its stream once the stream is written.
func (sh *shard) checker() {
	for checks := range sh.jobs {
		for _, c := range checks {
			sh.s.metrics.checks.Inc()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			err := sh.flushStream(ctx, c.p.req.Stream, false)
			cancel()
			if err != nil {
				sh.failAll([]*pending{c.p}, err)
				continue
			}
			sh.runCheck(c)
		}
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
	m, err := sh.s.cfg.Streams.MatchAppend(ctx, &p.req, c.version, c.buckets, c.low)
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
		p.fresh, p.expiredAt = true, c.idsAt
		p.state.Store(queued)
		if err := sh.submit(p, true); err != nil {
			p.finish(log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", p.req.Stream, log.ErrUnavailable, err))
		}
	}
}
