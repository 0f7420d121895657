package catalog

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
)

// TestRunStopsAtTheFirstError: after a job fails, run starts no other
// job and cancels the running ones' ctx. It ran every job to its end, so
// a lookup whose first read failed still sent all its others.
func TestRunStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	t.Run("NotStarted", func(t *testing.T) {
		var started atomic.Int32
		jobs := []func(context.Context) error{func(context.Context) error { return boom }}
		for range 5 {
			jobs = append(jobs, func(context.Context) error { started.Add(1); return nil })
		}
		if err := run(context.Background(), jobs, 1); err != boom {
			t.Fatalf("run: %v, want boom", err)
		}
		if n := started.Load(); n != 0 {
			t.Fatalf("%d jobs started after the first failed, want none", n)
		}
	})
	t.Run("Running", func(t *testing.T) {
		failed := make(chan struct{})
		var cancelled atomic.Bool
		jobs := []func(context.Context) error{
			func(ctx context.Context) error {
				<-failed
				select {
				case <-ctx.Done():
					cancelled.Store(true)
					return ctx.Err()
				case <-time.After(time.Minute): // a bound, not a speed: without the cancel it never ends
					return nil
				}
			},
			func(context.Context) error { defer close(failed); return boom },
		}
		if err := run(context.Background(), jobs, 2); err != boom || !cancelled.Load() {
			t.Fatalf("run: %v, the running job's ctx cancelled: %v; want boom, true", err, cancelled.Load())
		}
	})
	t.Run("CallerDone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var started atomic.Int32
		jobs := []func(context.Context) error{func(context.Context) error { cancel(); return nil }}
		for range 5 {
			jobs = append(jobs, func(context.Context) error { started.Add(1); return nil })
		}
		if err := run(ctx, jobs, 1); !errors.Is(err, context.Canceled) || started.Load() != 0 {
			t.Fatalf("run: %v, %d jobs started after the caller's ctx ended; want context.Canceled, none", err, started.Load())
		}
	})
}

// TestRunPanicIsTheCallers: a job's panic comes out of run, in the
// caller's goroutine, after the other jobs are cancelled and have ended,
// as it does with a single job (which run calls itself). It panicked in
// run's goroutine, where no recover can reach it: a lookup by id of two
// partitions or more whose read panicked ended the process, where the
// same panic in one partition's read was the HTTP layer's 500.
func TestRunPanicIsTheCallers(t *testing.T) {
	var cancelled atomic.Bool
	panicked, second := make(chan struct{}), make(chan struct{})
	jobs := []func(context.Context) error{
		// It panics once the second job runs: a panic before run started
		// it left it not started, never cancelled (a flake in CI).
		func(context.Context) error { <-second; defer close(panicked); panic("boom") },
		func(ctx context.Context) error {
			close(second)
			<-panicked
			select {
			case <-ctx.Done():
				cancelled.Store(true)
				return ctx.Err()
			case <-time.After(time.Minute): // a bound, not a speed: without the cancel it never ends
				return nil
			}
		},
	}
	got := func() (r any) {
		defer func() { r = recover() }()
		_ = run(context.Background(), jobs, 2)
		return nil
	}()
	// Raised as a *fanout.Panic: the value, and the stack of the job's
	// goroutine, where it happened.
	p, ok := got.(*fanout.Panic)
	if !ok || p.Value != "boom" || !strings.Contains(string(p.Stack), "TestRunPanicIsTheCallers") || !cancelled.Load() {
		t.Fatalf("run's panic: %v, the other job cancelled: %v; want boom with the job's stack, true", got, cancelled.Load())
	}
}
