package log

// Watcher is implemented by stores that can say when a stream may have new
// events, so live subscriptions wake at once instead of at their next poll.
// It is a hint: a subscriber still polls, for appends made by other
// server instances.
type Watcher interface {
	// Watch returns a channel that receives a value (coalesced: at most one
	// pending) after each commit to stream by this instance, and a func
	// that stops the watch.
	Watch(stream StreamID) (<-chan struct{}, func())
}
