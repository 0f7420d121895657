package main

import (
	"context"
	"sync"
	"time"
)

// loopConfig is how operations are issued.
type loopConfig struct {
	// concurrency: closed-loop workers, each issuing its next operation
	// when the previous one completes; with rate > 0, the most operations
	// in flight.
	concurrency int
	// rate > 0 runs an open loop: operations are scheduled at fixed
	// intervals whatever the responses, and each latency is measured from
	// its scheduled start, so time spent queued behind a slow server
	// counts (no coordinated omission).
	rate             float64
	warmup, duration time.Duration
}

// opFunc performs one operation. Each worker has its own (state such as
// random generators and buffers is per worker).
type opFunc func(ctx context.Context) outcome

// runLoop runs operations for warmup + duration and records those that
// started after the warm-up. It calls onMeasure when measuring starts and
// returns when every operation in flight has completed, with the time
// measuring was due to end (the phase lasts until the later of that and
// the last completion). Cancelling ctx stops it early.
//
// rec.start is when measuring starts: the loop begins lc.warmup before it.
func runLoop(ctx context.Context, lc loopConfig, newOp func(worker int) opFunc, rec *recorder, onMeasure func()) time.Time {
	measureAt := rec.start
	start := measureAt.Add(-lc.warmup)
	end := measureAt.Add(lc.duration)
	t := time.AfterFunc(time.Until(measureAt), onMeasure)
	defer t.Stop()

	// done records an operation by its intended start: the time it began
	// (closed loop) or was scheduled to begin (open loop).
	done := func(intended time.Time, o outcome) {
		now := time.Now()
		rec.live.Add(int64(o.events))
		if !intended.Before(measureAt) {
			rec.record(now, now.Sub(intended), o)
		}
	}
	var wg sync.WaitGroup
	if lc.rate <= 0 {
		for i := range lc.concurrency {
			op := newOp(i)
			wg.Go(func() {
				for ctx.Err() == nil {
					t0 := time.Now()
					if !t0.Before(end) {
						return
					}
					done(t0, op(ctx))
				}
			})
		}
		wg.Wait()
		return end
	}

	starts := make(chan time.Time, lc.concurrency)
	interval := time.Duration(float64(time.Second) / lc.rate)
	go func() {
		defer close(starts)
		for i := int64(0); ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				return
			}
			// Sleep only when more than a millisecond ahead: at high rates
			// operations leave in small bursts, each with its own
			// scheduled time.
			if d := time.Until(at); d > time.Millisecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			select {
			case starts <- at:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := range lc.concurrency {
		op := newOp(i)
		wg.Go(func() {
			for at := range starts {
				if ctx.Err() != nil {
					continue
				}
				done(at, op(ctx))
			}
		})
	}
	wg.Wait()
	return end
}
