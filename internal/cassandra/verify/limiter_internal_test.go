package verify

import (
	"context"
	"testing"
	"time"
)

// TestLimiterSlowRates: a rate so low that a second over it overflows a
// time.Duration spaces rows as far apart as a Duration can, never closer.
// time.Duration(1e9/rate) of such a rate was negative, and every row was
// read at once: --rate 1e-12 was no limit at all.
func TestLimiterSlowRates(t *testing.T) {
	for _, rate := range []float64{1e-9, 1e-10, 1e-12, 1e-300} {
		l := NewLimiter(rate)
		if l.interval < time.Duration(1e9) {
			t.Fatalf("rate %g: interval %v", rate, l.interval)
		}
		if err := l.Wait(context.Background()); err != nil { // the first row at once
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Wait(ctx); err == nil || !l.next.After(time.Now().Add(time.Hour)) {
			t.Fatalf("rate %g: the second row: %v, next at %v", rate, err, l.next)
		}
	}
}
