package main

import (
	"fmt"
	"io"
	"time"
)

// startProgress prints one line a second on w: the phase, time elapsed,
// events/s over the last second and on average, and errors so far. It
// returns a function that stops it.
func startProgress(w io.Writer, label string, rec *recorder, total time.Duration) func() {
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		began := time.Now()
		var last int64
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n := rec.live.Load()
				rec.mu.Lock()
				errs := int64(0)
				for _, v := range rec.errors {
					errs += v
				}
				measured := rec.events
				rec.mu.Unlock()
				el := now.Sub(began)
				// The average is of the measured part once measuring.
				state, avg := "warm-up", float64(n)/el.Seconds()
				if m := now.Sub(rec.start); m > 0 {
					state, avg = "measuring", float64(measured)/m.Seconds()
				}
				of := ""
				if total > 0 {
					of = fmt.Sprintf("/%s", total.Round(time.Second))
				}
				fmt.Fprintf(w, "%-22s %6s%s %-9s %10.0f ev/s now %10.0f ev/s avg  %d errors\n",
					label, el.Round(time.Second), of, state, float64(n-last), avg, errs)
				last = n
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}
