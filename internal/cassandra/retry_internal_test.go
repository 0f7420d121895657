package cassandra

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// retried is a query after attempts failed attempts, in ctx.
type retried struct {
	attempts int
	ctx      context.Context
}

func (q retried) Attempts() int                     { return q.attempts }
func (q retried) SetConsistency(gocql.Consistency)  {}
func (q retried) GetConsistency() gocql.Consistency { return gocql.LocalQuorum }
func (q retried) Context() context.Context          { return q.ctx }

// TestRetryBackoffHeedsTheContext: the session's retry policy does not
// sleep past a query's deadline, nor on once its context is cancelled:
// gocql's ExponentialBackoffRetryPolicy slept its whole nap (time.Sleep),
// so an idempotent read retried past its deadline. The test runs in a
// synctest bubble: the clock is fake, and each case reads how much of it
// the policy slept.
func TestRetryBackoffHeedsTheContext(t *testing.T) {
	c, err := NewClusterConfig(Options{Keyspace: "eventlog", Hosts: []string{"127.0.0.1"}, Consistency: "LOCAL_QUORUM", SerialConsistency: "LOCAL_SERIAL", Replication: "SimpleStrategy:1"})
	if err != nil {
		t.Fatal(err)
	}
	policy := c.RetryPolicy
	attempt := func(q gocql.RetryableQuery) (again bool, slept time.Duration) {
		start := time.Now()
		again = policy.Attempt(q)
		return again, time.Since(start)
	}
	t.Run("OK", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			for n, want := range map[int]time.Duration{1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond} {
				again, slept := attempt(retried{n, context.Background()})
				if !again || slept < want-want/2 || slept > want+want/2 {
					t.Errorf("after %d attempts: again %v after %v, want true after about %v", n, again, slept, want)
				}
			}
			if again, slept := attempt(retried{4, context.Background()}); again || slept != 0 {
				t.Errorf("after 4 attempts: again %v after %v, want false at once", again, slept)
			}
		})
	})
	t.Run("DeadlineWithinTheNap", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			if again, slept := attempt(retried{3, ctx}); again || slept != 0 {
				t.Errorf("again %v after %v, want false at once (the deadline comes within the nap)", again, slept)
			}
		})
	})
	t.Run("CancelledDuringTheNap", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			if again, slept := attempt(retried{3, ctx}); again || slept != 10*time.Millisecond {
				t.Errorf("again %v after %v, want false at the cancel (10ms)", again, slept)
			}
		})
	})
}
