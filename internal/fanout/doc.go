// Package fanout runs the goroutines a caller starts on its own behalf
// and waits for (a request's reads in parallel, a page read ahead), so
// that a panic on one of them is the caller's.
//
// A panic ends the process unless a recover on the goroutine that panics
// stops it. The HTTP layer's recover (which answers 500 and logs it) is
// on the request's goroutine only: a panic on a goroutine the request
// started ended the server, every client of it and every shard it owned.
// Group, Future and Catch recover such a panic, with the stack of the
// goroutine that panicked, as a *Panic, and raise it again on the
// caller's goroutine once the caller waits (Group.Wait, Future.Get,
// Raise).
//
// Not for long-lived background loops (a shard's run, a refresh ticker):
// no caller waits for them, and a panic there still ends the process
// (deliberately, for a shard's loops: internal/cassandra/sequencer). A
// loop that serves requests without being one's recovers its own panic
// with Catch and ends what depended on it (internal/httpapi's
// subscription pollers).
package fanout
