package cassandra

import (
	"math/rand/v2"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// backoffRetry is gocql's ExponentialBackoffRetryPolicy (the same naps:
// Min doubled at each attempt, give or take half of Min, at most Max)
// with a back-off that heeds the query's context: gocql's sleeps with
// time.Sleep between the attempts of an idempotent query, so a query
// whose deadline passed during the nap came back only after it (then
// with the deadline's error in place of the node's), and a cancelled
// one slept on. This one does not retry when the nap would end past the
// context's deadline, and stops sleeping when the context is done: the
// query returns the last attempt's error at once.
type backoffRetry struct {
	NumRetries int
	Min, Max   time.Duration
}

var _ gocql.RetryPolicy = (*backoffRetry)(nil)

// Attempt reports whether q is tried again, after its nap.
func (b *backoffRetry) Attempt(q gocql.RetryableQuery) bool {
	if q.Attempts() > b.NumRetries {
		return false
	}
	ctx := q.Context()
	nap := b.nap(q.Attempts())
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= nap {
		return false
	}
	t := time.NewTimer(nap)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// GetRetryType retries on the next host, as gocql's policy does.
func (b *backoffRetry) GetRetryType(error) gocql.RetryType {
	return gocql.RetryNextHost
}

// nap is the wait before the attempt after attempts.
func (b *backoffRetry) nap(attempts int) time.Duration {
	d := b.Min << min(max(attempts-1, 0), 30)
	d += time.Duration(rand.Int64N(int64(b.Min)+1)) - b.Min/2
	return min(max(d, 0), b.Max)
}
