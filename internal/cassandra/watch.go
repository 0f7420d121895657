package cassandra

import (
	"sync"

	"github.com/eventlog/eventlog/internal/log"
)

var _ log.Watcher = (*Store)(nil)

// watchers fans commit notifications out to live subscriptions on this
// instance.
type watchers struct {
	mu sync.Mutex
	m  map[log.StreamID]map[chan struct{}]struct{}
}

// Watch implements log.Watcher.
func (s *Store) Watch(stream log.StreamID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w := &s.watchers
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[log.StreamID]map[chan struct{}]struct{})
	}
	if w.m[stream] == nil {
		w.m[stream] = make(map[chan struct{}]struct{})
	}
	w.m[stream][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.m[stream], ch)
		if len(w.m[stream]) == 0 {
			delete(w.m, stream)
		}
	}
}

// notify wakes the stream's watchers without ever blocking the commit.
func (w *watchers) notify(stream log.StreamID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[stream] {
		select {
		case ch <- struct{}{}:
		default: // one wake-up is already pending
		}
	}
}
