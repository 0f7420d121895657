package fanout

import (
	"context"
	"sync"
	"sync/atomic"
)

// Group is a sync.WaitGroup whose goroutines' panics are its waiter's:
// Wait waits for every goroutine started with Go and then raises the
// first one's panic, if any, as a *Panic. The zero Group is ready to use;
// WithContext makes one whose first panic also cancels the others.
type Group struct {
	wg     sync.WaitGroup
	cancel context.CancelCauseFunc
	first  atomic.Pointer[Panic]
}

// WithContext returns a Group and a context derived from ctx that is
// cancelled, with the *Panic as its cause (context.Cause), at the first
// panic of a goroutine of the Group, or when Wait returns. The goroutines
// that should stop at a panic take that context.
func WithContext(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{cancel: cancel}, ctx
}

// Go calls f on a goroutine of its own. A panic of f ends that goroutine
// only: it is kept for Wait (the first one; later ones are dropped).
func (g *Group) Go(f func()) {
	g.wg.Go(func() {
		if p := Catch(f); p != nil && g.first.CompareAndSwap(nil, p) && g.cancel != nil {
			g.cancel(p)
		}
	})
}

// Wait waits for the goroutines started with Go, then cancels the
// Group's context (WithContext) and raises the first panic, if any.
func (g *Group) Wait() {
	g.wg.Wait()
	if g.cancel != nil {
		g.cancel(nil)
	}
	Raise(g.first.Load())
}
