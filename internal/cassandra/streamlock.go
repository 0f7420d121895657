package cassandra

import (
	"context"
	"sync"

	"github.com/eventlog/eventlog/internal/log"
)

// streamLocks serialises this instance's appends to each stream. Appends to
// one stream can only commit one at a time anyway; letting them race their
// conditional writes makes them fail each other's conditions over and over
// (each loser pays a Paxos round and a head read). Writers on other
// instances still contend, and the condition keeps that correct.
type streamLocks struct {
	mu sync.Mutex
	m  map[log.StreamID]*streamLock
}

type streamLock struct {
	ch   chan struct{} // a one-slot semaphore, so waiting can honour ctx
	refs int
}

func newStreamLocks() *streamLocks {
	return &streamLocks{m: make(map[log.StreamID]*streamLock)}
}

// lock waits for the stream's lock; it returns ctx's error if ctx ends
// first. The returned func unlocks.
func (l *streamLocks) lock(ctx context.Context, s log.StreamID) (func(), error) {
	l.mu.Lock()
	e := l.m[s]
	if e == nil {
		e = &streamLock{ch: make(chan struct{}, 1)}
		l.m[s] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, s)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
