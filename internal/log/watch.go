package log

import "sync"

// Watcher is implemented by stores that can say when a stream may have new
// events, so live subscriptions wake at once instead of at their next poll.
// It is a hint: a subscriber still polls, for appends made by other
// server instances.
type Watcher interface {
	// Watch returns a channel that receives a value (coalesced: at most one
	// pending) after each commit to stream of an append through this
	// instance (committed here, or forwarded to the owner), and a func
	// that stops the watch.
	Watch(stream StreamID) (<-chan struct{}, func())
}

// Watchers fans commit notifications out to a store's live subscriptions
// on this instance: a store embeds one to implement Watcher and calls
// Notify after each commit. The zero value is ready to use.
type Watchers struct {
	mu sync.Mutex
	m  map[StreamID]map[chan struct{}]struct{}
}

// Watch implements Watcher.
func (w *Watchers) Watch(stream StreamID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[StreamID]map[chan struct{}]struct{})
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

// Notify wakes the stream's watchers without ever blocking the commit.
func (w *Watchers) Notify(stream StreamID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[stream] {
		select {
		case ch <- struct{}{}:
		default: // one wake-up is already pending
		}
	}
}
