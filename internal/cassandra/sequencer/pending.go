package sequencer

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// pending is one append waiting for its shard.
type pending struct {
	ctx  context.Context
	req  log.AppendRequest
	ids  []uuid.UUID // client-chosen ids
	size int         // payload bytes
	// fresh: its ids were found expired from the stream; decide it as a
	// new append even if the owner still holds them as committed at or
	// before expiredAt. Ids committed since (a copy of it written
	// meanwhile, or an earlier append of its batch) still make it a
	// retry: two copies sent at once, both found expired, were both
	// written.
	fresh     bool
	expiredAt time.Time
	res       log.AppendResult
	err       error
	done      chan struct{}
	// state: queued → taken (by the commit goroutine) or abandoned (by a
	// caller who left before that: then nothing of it is ever written).
	state atomic.Int32
}

const (
	queued int32 = iota
	taken
	abandoned
)

func newPending(ctx context.Context, req log.AppendRequest) *pending {
	p := &pending{ctx: ctx, req: req, done: make(chan struct{})}
	for i := range req.Events {
		e := &req.Events[i]
		p.size += len(e.Data) + len(e.Metadata) + len(e.Type) + 32
		if e.ClientID {
			p.ids = append(p.ids, e.ID)
		}
	}
	p.size += len(req.Stream)
	return p
}

func (p *pending) finish(res log.AppendResult, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// wait blocks until p is answered or ctx ends. A caller who leaves while p
// is still queued takes it back (nothing written); once taken, its outcome
// is unknown to the caller.
func (p *pending) wait(ctx context.Context) (log.AppendResult, error) {
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		if p.state.CompareAndSwap(queued, abandoned) {
			return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v (not sent)", p.req.Stream, log.ErrUnavailable, ctx.Err())
		}
		return log.AppendResult{}, fmt.Errorf("append to %s: %w: %v", p.req.Stream, log.ErrOutcomeUnknown, ctx.Err())
	}
}

// result builds the answer of an append of req stored from first on.
func result(req *log.AppendRequest, first int64, dup bool) log.AppendResult {
	r := log.AppendResult{Stream: req.Stream, FirstVersion: first, LastVersion: first + int64(len(req.Events)) - 1, Duplicate: dup}
	r.Events = make([]log.AppendedEvent, len(req.Events))
	for i := range req.Events {
		r.Events[i] = log.AppendedEvent{ID: req.Events[i].ID, Version: first + int64(i)}
	}
	return r
}
