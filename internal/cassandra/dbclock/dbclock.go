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
	measured time.Time // by time.Now's monotonic reading; zero: never
	failed   time.Time // the last attempt's start, if it failed; likewise
	reading  bool      // an attempt is under way, outside mu
}

// retryEvery spaces the attempts after a failed measurement: callers meanwhile
// take the last offset, rather than each reading a node in trouble.
const retryEvery = time.Second

// Now is the cluster's time. A failed measurement keeps the last offset
// (none at first: this instance's clock) and is tried again at most every
// second. The first measurement is waited for; later ones are made by one
// caller while the others take the offset they replace.
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
	due := (c.measured.IsZero() || time.Since(c.measured) > every) &&
		!c.reading && (c.failed.IsZero() || time.Since(c.failed) >= retryEvery)
	if !due {
		off := c.offset
		c.mu.Unlock()
		return local().Add(off)
	}
	start := time.Now()
	first := c.measured.IsZero()
	if !first {
		c.reading = true
		c.mu.Unlock()
	}
	// From the middle of the read, so the offset is off by at most half
	// its round trip.
	before := local()
	t, err := c.readNow(ctx)
	mid := before.Add(local().Sub(before) / 2)
	if !first {
		c.mu.Lock()
		c.reading = false
	}
	if err == nil {
		c.offset, c.measured, c.failed = t.Sub(mid), time.Now(), time.Time{}
	} else {
		c.failed = start
	}
	off := c.offset
	c.mu.Unlock()
	return local().Add(off)
}

func (c *Clock) readNow(ctx context.Context) (time.Time, error) {
	if c.read != nil {
		return c.read(ctx)
	}
	return Read(ctx, c.Session)
}
