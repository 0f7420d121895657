package sequencer

import (
	"context"
	"testing"
	"time"
)

// TestOwnerWaitStartsAgainAtANewEpoch: a try that waited most of the wait
// for a shard's next owner on a paused owner (forwardRemote, flushRemote
// give up on it only once another instance has taken the shard) leaves the
// new owner the whole wait again to finish its takeover. The first epoch
// seen after the first try did not start it again (only a second change
// did), so the new owner had what was left, and a takeover slower than
// that ended the append in outcome_unknown, the read in unavailable.
func TestOwnerWaitStartsAgainAtANewEpoch(t *testing.T) {
	o := handoverKeyspace(t, 1)
	s := retrySequencer(t, o, time.Minute, nil, func(c *Config) { c.LeaseTTL = 2 * time.Second })
	t.Cleanup(func() { handoverClose(s) })
	const wait = 10 * time.Second // max(3 × the lease TTL, 10 s)
	start := time.Now()
	tries := 0
	err := s.untilOwner(context.Background(), 0, "test", func(_ *shard, ow owner) bool {
		if tries++; tries == 1 {
			time.Sleep(wait - time.Second) // on a paused owner, until it was taken over
			ow.Epoch++
			s.setOwner(ow)
			return false
		}
		// The new owner's takeover ends 3 s later.
		return time.Since(start) > wait+2*time.Second
	})
	if err != nil {
		t.Fatalf("after %v: %v; want the new owner's answer", time.Since(start).Round(time.Second), err)
	}
}
