// Package dbclock tells the time by the Cassandra cluster's clock.
//
// Server instances' clocks may disagree by hours; Cassandra's nodes'
// cannot (its last-write-wins needs them in step). A moment written by
// one instance and judged by another (a consumer group member's expiry,
// an API key's) agrees on every instance only when both read the same
// clock: this one.
package dbclock

import (
	"context"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

const cqlNow = `SELECT toTimestamp(now()) FROM system.local`

// Read returns the coordinating node's clock, to the millisecond.
func Read(ctx context.Context, session *gocql.Session) (time.Time, error) {
	var t time.Time
	if err := session.Query(cqlNow).WithContext(ctx).Idempotent(true).Scan(&t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Clock is the cluster's clock as seen from this instance: its own clock
// plus the offset last measured, measured again when older than Every.
type Clock struct {
	Session *gocql.Session
	Local   func() time.Time // this instance's clock; nil: time.Now
	Every   time.Duration    // how old an offset may get; 0: 10s

	// read replaces Read (tests).
	read func(ctx context.Context) (time.Time, error)

	mu       sync.Mutex
	offset   time.Duration
	measured time.Time     // by time.Now's monotonic reading; zero: never
	failed   time.Time     // when the last attempt failed, if it did; likewise
	reading  chan struct{} // closed when the attempt under way ends; nil: none
}

// retryEvery spaces the attempts after a failed measurement: callers
// meanwhile take the last offset, rather than each reading a node in
// trouble. measureTimeout bounds an attempt.
const (
	retryEvery     = time.Second
	measureTimeout = 5 * time.Second
)

// Now is the cluster's time. The first measurement is waited for (within
// ctx); a later one is made in the background while callers take the
// offset it replaces, so that no caller (a fill round, a group write)
// waits on a read of the node. A failed measurement keeps the last offset
// (none at first: this instance's clock) and is tried again at most every
// second after it failed.
func (c *Clock) Now(ctx context.Context) time.Time {
	local := c.Local
	if local == nil {
		local = time.Now
	}
	every := c.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	c.mu.Lock()
	stale := c.measured.IsZero() || time.Since(c.measured) > every
	if stale && c.reading == nil && (c.failed.IsZero() || time.Since(c.failed) >= retryEvery) {
		c.reading = make(chan struct{})
		go c.measure(local)
	}
	wait := c.measured.IsZero() && c.failed.IsZero() && c.reading != nil
	reading, off := c.reading, c.offset
	c.mu.Unlock()
	if wait {
		select {
		case <-reading:
		case <-ctx.Done():
		}
		c.mu.Lock()
		off = c.offset
		c.mu.Unlock()
	}
	return local().Add(off)
}

// measure reads the node's clock once, and ends the attempt under way.
func (c *Clock) measure(local func() time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
	defer cancel()
	// From the middle of the read, so the offset is off by at most half
	// its round trip.
	before := local()
	t, err := c.readNow(ctx)
	mid := before.Add(local().Sub(before) / 2)
	c.mu.Lock()
	if err == nil {
		c.offset, c.measured, c.failed = t.Sub(mid), time.Now(), time.Time{}
	} else {
		c.failed = time.Now()
	}
	close(c.reading)
	c.reading = nil
	c.mu.Unlock()
}

func (c *Clock) readNow(ctx context.Context) (time.Time, error) {
	if c.read != nil {
		return c.read(ctx)
	}
	return Read(ctx, c.Session)
}
