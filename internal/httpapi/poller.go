package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
)

// errPollerBroken ends the subscriptions of a poller whose loop panicked
// (pollerSet.broke): 500 internal for one not answered yet, a cut stream
// for the others (follow).
var errPollerBroken = errors.New("the poller shared by this subscription panicked")

// A poller reads the store on behalf of every live subscription of one
// stream or feed on this instance: one probe per SubscribePoll (and per
// local wake-up) however many subscribers wait, so idle subscriptions cost
// Cassandra nothing each. It publishes the latest thing it found (a
// stream's head version; for a feed, whose positions are opaque, a count
// of the changes it saw); a subscriber reads the store itself only when
// that says there is something it has not read.
//
// Its loop is no request's: a panic there ends the poller only, not the
// process (pollerSet.broke), and with it the subscriptions it served.
type poller[T comparable] struct {
	mu      sync.Mutex
	refs    int
	latest  T
	known   bool
	changed chan struct{} // closed and replaced when latest changes; closed for good once broken
	broken  bool          // its loop panicked: it publishes nothing more
	stop    context.CancelFunc
	// subs are the request contexts of its subscribers, in the order they
	// joined: a probe reads with the values of one of them, with (its
	// client's token, which a flush asked of the stream's owner carries).
	subs []*context.Context
	// with is the newest subscriber at first and, after a probe that
	// failed, the one before it (after the oldest, the newest again): a
	// subscriber whose token stopped working while it stays connected
	// (expired, revoked) must not fail every probe of the others.
	with *context.Context
}

// subscriber is the request context the next probe reads with (nil when
// there is no subscriber), and its entry in subs.
func (p *poller[T]) subscriber() (*context.Context, context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.subs) == 0 {
		return nil, nil
	}
	if !slices.Contains(p.subs, p.with) {
		p.with = p.subs[len(p.subs)-1]
	}
	return p.with, *p.with
}

// failed moves the probes from the subscriber whose values a probe failed
// with to the one that joined before it.
func (p *poller[T]) failed(entry *context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.subs, entry); i > 0 {
		p.with = p.subs[i-1]
	} else if len(p.subs) > 0 {
		p.with = p.subs[len(p.subs)-1]
	}
}

// withValues is ctx (its deadline and cancellation) with the values of
// vals.
type withValues struct {
	context.Context
	vals context.Context
}

func (c withValues) Value(key any) any { return c.vals.Value(key) }

// watch returns the channel closed at the next change, and the latest
// value (known is false until the first probe found one).
func (p *poller[T]) watch() (changed <-chan struct{}, latest T, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed, p.latest, p.known
}

// err is errPollerBroken once the poller's loop panicked: its subscribers
// must end (changed is closed then, so that they wake).
func (p *poller[T]) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return errPollerBroken
	}
	return nil
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
	// kind ("stream", "feed") and log say where a poller's panic is
	// logged (broke).
	kind string
	log  *slog.Logger
	mu   sync.Mutex
	m    map[string]*poller[T]
}

// probeFunc reads the store once: found reports a new latest value v.
type probeFunc[T comparable] func(ctx context.Context) (v T, found bool, err error)

// join returns the poller of key, starting it (with probe, every interval
// and whenever wake fires) if it is not running; leave stops it with its
// last subscriber. sub is the subscriber's request context: the probes
// read with the values (the client's token) of a subscriber's request, as
// the owner of a stream's shard authorises the flush a read asks of it
// with the reading client's token; after a probe fails, with another
// subscriber's (poller.with).
func (ps *pollerSet[T]) join(key string, sub context.Context, interval time.Duration, wake func() (<-chan struct{}, func()), probe probeFunc[T]) (p *poller[T], leave func()) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*poller[T]{}
	}
	p = ps.m[key]
	start := p == nil
	if start {
		p = &poller[T]{changed: make(chan struct{})}
		ps.m[key] = p
	}
	p.refs++
	entry := &sub
	p.mu.Lock()
	p.subs = append(p.subs, entry)
	p.mu.Unlock()
	if start { // after its first subscriber is known: its first probe reads with it
		ctx, cancel := context.WithCancel(context.Background())
		p.stop = cancel
		go func() {
			if pn := fanout.Catch(func() { p.run(ctx, interval, wake, probe) }); pn != nil {
				ps.broke(key, p, pn)
			}
		}()
	}
	return p, func() {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		p.mu.Lock()
		p.subs = slices.DeleteFunc(p.subs, func(e *context.Context) bool { return e == entry })
		p.mu.Unlock()
		if p.refs--; p.refs == 0 {
			p.stop()
			if ps.m[key] == p { // not a new one, started after p broke
				delete(ps.m, key)
			}
		}
	}
}

// broke ends p, of key, whose loop panicked with pn. The poller serves
// every live subscription of its stream or feed on this instance and is
// none of their requests: its panic (which, not recovered, ended the
// process) is logged here, once, with its stack. p leaves the set, so the next subscriber of
// key starts a new poller, and its subscribers end with a server error
// (errPollerBroken), woken by changed.
func (ps *pollerSet[T]) broke(key string, p *poller[T], pn *fanout.Panic) {
	ps.mu.Lock()
	if ps.m[key] == p {
		delete(ps.m, key)
	}
	subs := p.refs
	ps.mu.Unlock()
	p.stop()
	p.mu.Lock()
	p.broken = true
	close(p.changed) // closed for good: a subscriber woken finds it broken
	p.mu.Unlock()
	logger := ps.log
	if logger == nil {
		logger = slog.Default()
	}
	logger.Error("panic in a subscription poller: its subscriptions end",
		"poller", ps.kind, "key", key, "subscribers", subs, "panic", fmt.Sprint(pn.Value), "stack", string(pn.Stack))
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
		pctx := ctx
		entry, sub := p.subscriber()
		if sub != nil {
			pctx = withValues{Context: ctx, vals: sub}
		}
		pctx, cancel := context.WithTimeout(pctx, max(interval, 5*time.Second))
		v, found, err := probe(pctx)
		cancel()
		switch {
		case err == nil && found:
			p.publish(v)
		case err != nil && entry != nil && ctx.Err() == nil:
			p.failed(entry)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-woken:
		}
	}
}
