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

	mu       sync.Mutex
	offset   time.Duration
	measured time.Time // by time.Now's monotonic reading; zero: never
}

// Now is the cluster's time. A failed measurement keeps the last offset
// (none at first: this instance's clock) and is tried again next time.
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
	defer c.mu.Unlock()
	if c.measured.IsZero() || time.Since(c.measured) > every {
		// From the middle of the read, so the offset is off by at most
		// half its round trip.
		before := local()
		if t, err := Read(ctx, c.Session); err == nil {
			c.offset = t.Sub(before.Add(local().Sub(before) / 2))
			c.measured = time.Now()
		}
	}
	return local().Add(c.offset)
}
