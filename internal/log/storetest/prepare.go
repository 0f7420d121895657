package storetest

import (
	"sync"
	"testing"
)

// Prepared hands out values made in the background ahead of use, and
// disposes of them in the background: for a factory's keyspaces, whose
// creation and removal take most of a body's time on Cassandra and overlap
// well with the previous body's run (schema changes wait more than they
// work). Bodies run one after another, so one value ahead is enough.
type Prepared[T any] struct {
	build   func() (T, error)
	discard func(T)
	ahead   int

	mu      sync.Mutex
	ready   chan preparedValue[T]
	pending int // being made or ready, not taken
	bg      sync.WaitGroup
}

type preparedValue[T any] struct {
	v   T
	err error
}

// Prepare returns a Prepared whose values build makes, keeping ahead of
// them in the making once the first is taken. When t ends it disposes of
// the values never taken and waits for everything it started in the
// background. build and discard run on goroutines of their own.
func Prepare[T any](t *testing.T, ahead int, build func() (T, error), discard func(T)) *Prepared[T] {
	p := &Prepared[T]{build: build, discard: discard, ahead: ahead, ready: make(chan preparedValue[T], ahead+1)}
	t.Cleanup(func() {
		p.mu.Lock()
		n := p.pending
		p.pending = 0
		p.mu.Unlock()
		for range n {
			if r := <-p.ready; r.err == nil {
				p.Discard(r.v)
			}
		}
		p.bg.Wait()
	})
	return p
}

// start makes one more value in the background. p.mu is held.
func (p *Prepared[T]) start() {
	p.pending++
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		v, err := p.build()
		p.ready <- preparedValue[T]{v, err}
	}()
}

// Take returns the next value, waiting for it to be made, and starts
// making the next ones. It fails t if making it failed.
func (p *Prepared[T]) Take(t *testing.T) T {
	t.Helper()
	p.mu.Lock()
	if p.pending == 0 {
		p.start()
	}
	p.mu.Unlock()
	r := <-p.ready
	p.mu.Lock()
	p.pending--
	for p.pending < p.ahead {
		p.start()
	}
	p.mu.Unlock()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// Discard disposes of v in the background.
func (p *Prepared[T]) Discard(v T) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		p.discard(v)
	}()
}
