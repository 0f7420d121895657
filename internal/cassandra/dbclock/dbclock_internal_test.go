package dbclock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailedMeasurementsAreSpaced: while the node cannot be read, callers
// take the last offset; before, each call read the node again, so every
// fill round and group write queued behind a read of a node in trouble.
func TestFailedMeasurementsAreSpaced(t *testing.T) {
	var reads atomic.Int64
	c := &Clock{read: func(context.Context) (time.Time, error) {
		reads.Add(1)
		return time.Time{}, errors.New("node down")
	}}
	for range 100 {
		c.Now(context.Background())
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for 100 calls within a second of a failure, want 1", n)
	}
}

// TestRemeasureDoesNotHoldCallers: once measured, a new measurement is made
// by one caller while the others take the offset it replaces, instead of
// queueing behind its read.
func TestRemeasureDoesNotHoldCallers(t *testing.T) {
	const ahead = time.Hour
	release := make(chan struct{})
	var reads atomic.Int64
	c := &Clock{Every: time.Millisecond, read: func(context.Context) (time.Time, error) {
		if reads.Add(1) > 1 {
			<-release
		}
		return time.Now().Add(ahead), nil
	}}
	if d := time.Until(c.Now(context.Background())); d < ahead-time.Minute || d > ahead+time.Minute {
		t.Fatalf("first measurement: %v ahead, want about %v", d, ahead)
	}
	time.Sleep(5 * time.Millisecond) // the offset is stale
	slow := make(chan time.Time)
	go func() { slow <- c.Now(context.Background()) }()
	for reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan time.Time)
	go func() { done <- c.Now(context.Background()) }()
	select {
	case got := <-done:
		if d := time.Until(got); d < ahead-time.Minute {
			t.Fatalf("a caller during the measurement got %v ahead, want the last offset (%v)", d, ahead)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a caller waited for another's measurement")
	}
	close(release)
	<-slow
	if n := reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
}

// TestSlowFailuresAreSpaced: the second between attempts runs from a
// failure's end: spaced from its start, a read that failed after its
// timeout (seconds, with the node in trouble) was tried again at once.
func TestSlowFailuresAreSpaced(t *testing.T) {
	var reads atomic.Int64
	c := &Clock{read: func(context.Context) (time.Time, error) {
		reads.Add(1)
		time.Sleep(1200 * time.Millisecond)
		return time.Time{}, errors.New("timed out")
	}}
	c.Now(context.Background()) // waits for the first attempt, which fails
	for range 100 {
		c.Now(context.Background())
	}
	time.Sleep(100 * time.Millisecond)
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads right after a failure, want 1", n)
	}
}
