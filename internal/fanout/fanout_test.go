package fanout_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
)

// boom panics where a test can find it in a stack.
func boom() { panic("boom") }

// mustRaise calls f and returns the *Panic it raised; it fails the test
// when f returns or raises something else.
func mustRaise(tb testing.TB, f func()) *fanout.Panic {
	tb.Helper()
	var r any
	func() {
		defer func() { r = recover() }()
		f()
	}()
	p, ok := r.(*fanout.Panic)
	if !ok {
		tb.Fatalf("raised %#v, want a *fanout.Panic", r)
	}
	return p
}

func checkBoom(tb testing.TB, p *fanout.Panic) {
	tb.Helper()
	if got, want := p.Value, any("boom"); got != want {
		tb.Fatalf("panic value %v, want %v", got, want)
	}
	if !strings.Contains(string(p.Stack), "fanout_test.boom(") {
		tb.Fatalf("stack does not show where it panicked:\n%s", p.Stack)
	}
	if !strings.Contains(p.Error(), "boom") || !strings.Contains(p.Error(), "fanout_test.boom(") {
		tb.Fatalf("Error() %q does not give the value and the stack", p.Error())
	}
}

func TestCatch(t *testing.T) {
	t.Run("Returns", func(t *testing.T) {
		if p := fanout.Catch(func() {}); p != nil {
			t.Fatalf("Catch of a function that returns: %v, want nil", p)
		}
	})
	t.Run("Panics", func(t *testing.T) {
		checkBoom(t, fanout.Catch(boom))
	})
	t.Run("PanicKeptAsItIs", func(t *testing.T) {
		inner := fanout.Catch(boom)
		if got := fanout.Catch(func() { fanout.Raise(inner) }); got != inner {
			t.Fatalf("a raised *Panic caught again: %p, want the same %p", got, inner)
		}
	})
	t.Run("NilPanic", func(t *testing.T) {
		p := fanout.Catch(func() { panic(nil) })
		var pe *runtime.PanicNilError
		if p == nil || !errors.As(p, &pe) {
			t.Fatalf("Catch of panic(nil): %v, want a *runtime.PanicNilError", p)
		}
	})
	t.Run("Unwrap", func(t *testing.T) {
		p := fanout.Catch(func() { panic(http.ErrAbortHandler) })
		if !errors.Is(p, http.ErrAbortHandler) {
			t.Fatalf("errors.Is(%v, http.ErrAbortHandler) false", p)
		}
	})
	t.Run("RaiseNil", func(t *testing.T) {
		fanout.Raise(nil) // no panic
	})
}

// TestGroupWait: the panic of one goroutine of a Group is raised by Wait,
// with its value and stack, after every other goroutine has ended; with
// WithContext, the others' context is cancelled by it, its cause the
// panic.
func TestGroupWait(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		var g fanout.Group
		var n atomic.Int32
		for range 10 {
			g.Go(func() { n.Add(1) })
		}
		g.Wait()
		if got := n.Load(); got != 10 {
			t.Fatalf("%d goroutines ran before Wait returned, want 10", got)
		}
	})
	t.Run("ZeroGroupPanic", func(t *testing.T) {
		var g fanout.Group
		var ended atomic.Bool
		release := make(chan struct{})
		g.Go(func() { <-release; ended.Store(true) })
		g.Go(func() { defer close(release); boom() })
		checkBoom(t, mustRaise(t, g.Wait))
		if !ended.Load() {
			t.Fatal("Wait raised the panic before the other goroutine ended")
		}
	})
	t.Run("WithContextCancels", func(t *testing.T) {
		g, ctx := fanout.WithContext(context.Background())
		var cancelled, ended atomic.Bool
		panicked := make(chan struct{})
		g.Go(func() {
			defer ended.Store(true)
			<-panicked
			select {
			case <-ctx.Done():
				var p *fanout.Panic
				cancelled.Store(errors.As(context.Cause(ctx), &p) && p.Value == "boom")
			case <-time.After(time.Minute): // a bound, not a speed: without the cancel it never ends
			}
		})
		g.Go(func() { defer close(panicked); boom() })
		checkBoom(t, mustRaise(t, g.Wait))
		if !cancelled.Load() || !ended.Load() {
			t.Fatalf("the other goroutine: ctx cancelled by the panic %v, ended %v; want true, true", cancelled.Load(), ended.Load())
		}
	})
	t.Run("FirstPanicWins", func(t *testing.T) {
		var g fanout.Group
		first := make(chan struct{})
		g.Go(func() { defer close(first); boom() })
		g.Go(func() { <-first; panic("second") })
		checkBoom(t, mustRaise(t, g.Wait))
	})
	t.Run("Nested", func(t *testing.T) {
		// A panic raised by an inner Wait on an outer goroutine keeps the
		// inner goroutine's stack.
		var outer fanout.Group
		outer.Go(func() {
			var inner fanout.Group
			inner.Go(boom)
			inner.Wait()
		})
		checkBoom(t, mustRaise(t, outer.Wait))
	})
	t.Run("WaitCancels", func(t *testing.T) {
		g, ctx := fanout.WithContext(context.Background())
		g.Go(func() {})
		g.Wait()
		if ctx.Err() == nil || context.Cause(ctx) != context.Canceled {
			t.Fatalf("ctx after Wait: %v (cause %v), want cancelled", ctx.Err(), context.Cause(ctx))
		}
	})
}

func TestFuture(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		fu := fanout.Start(func() int { return 7 })
		<-fu.Done()
		if got := fu.Get(); got != 7 {
			t.Fatalf("Get: %d, want 7", got)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		fu := fanout.Start(func() int { boom(); return 7 })
		checkBoom(t, mustRaise(t, func() { fu.Get() }))
		// Every Get raises it: a second waiter does not take a zero value
		// for a result.
		checkBoom(t, mustRaise(t, func() { fu.Get() }))
	})
}
