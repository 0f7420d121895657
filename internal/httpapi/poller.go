package httpapi

import (
	"context"
	"sync"
	"time"
)

// A poller reads the store on behalf of every live subscription of one
// stream or feed on this instance: one probe per SubscribePoll (and per
// local wake-up) however many subscribers wait, so idle subscriptions cost
// Cassandra nothing each. It publishes the latest thing it found (a
// stream's head version; for a feed, whose positions are opaque, a count
// of the changes it saw); a subscriber reads the store itself only when
// that says there is something it has not read.
type poller[T comparable] struct {
	mu      sync.Mutex
	refs    int
	latest  T
	known   bool
	changed chan struct{} // closed and replaced when latest changes
	stop    context.CancelFunc
}

// watch returns the channel closed at the next change, and the latest
// value (known is false until the first probe found one).
func (p *poller[T]) watch() (changed <-chan struct{}, latest T, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed, p.latest, p.known
}

func (p *poller[T]) publish(v T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known && v == p.latest {
		return
	}
	p.latest, p.known = v, true
	close(p.changed)
	p.changed = make(chan struct{})
}

// pollerSet holds the running pollers of one kind by key.
type pollerSet[T comparable] struct {
	mu sync.Mutex
	m  map[string]*poller[T]
}

// probeFunc reads the store once: found reports a new latest value v.
type probeFunc[T comparable] func(ctx context.Context) (v T, found bool, err error)

// join returns the poller of key, starting it (with probe, every interval
// and whenever wake fires) if it is not running; leave stops it with its
// last subscriber.
func (ps *pollerSet[T]) join(key string, interval time.Duration, wake func() (<-chan struct{}, func()), probe probeFunc[T]) (p *poller[T], leave func()) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*poller[T]{}
	}
	p = ps.m[key]
	if p == nil {
		p = &poller[T]{changed: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		p.stop = cancel
		ps.m[key] = p
		go p.run(ctx, interval, wake, probe)
	}
	p.refs++
	return p, func() {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		if p.refs--; p.refs == 0 {
			p.stop()
			delete(ps.m, key)
		}
	}
}

func (p *poller[T]) run(ctx context.Context, interval time.Duration, wake func() (<-chan struct{}, func()), probe probeFunc[T]) {
	var woken <-chan struct{}
	if wake != nil {
		ch, stop := wake()
		defer stop()
		woken = ch
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
		v, found, err := probe(pctx)
		cancel()
		if err == nil && found {
			p.publish(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-woken:
		}
	}
}
