package fanout

// Future is the result of a function called on a goroutine of its own
// (Start), for its caller to collect with Get. A Future whose Get is
// never called hides its function's panic: every path of the caller must
// collect it (in a defer when some path does not need the result).
type Future[T any] struct {
	done chan struct{}
	v    T
	p    *Panic
}

// Start calls f on a goroutine of its own.
func Start[T any](f func() T) *Future[T] {
	fu := &Future[T]{done: make(chan struct{})}
	go func() {
		defer close(fu.done)
		fu.p = Catch(func() { fu.v = f() })
	}()
	return fu
}

// Done is closed once f has returned or panicked (then Get does not
// block).
func (fu *Future[T]) Done() <-chan struct{} { return fu.done }

// Get waits for f and returns its result; if f panicked, Get raises that
// panic (a *Panic) instead, every time it is called.
func (fu *Future[T]) Get() T {
	<-fu.done
	Raise(fu.p)
	return fu.v
}
