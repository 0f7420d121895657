package sequencer

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// TestStartRenewsDuringASlowFirstTake: Start waits for its first tick's
// takeovers with the ownership loop already running, so while one of them
// catches up slowly the shards the first tick took meanwhile are renewed
// (a first version waited before starting the loop: a helper's review).
func TestStartRenewsDuringASlowFirstTake(t *testing.T) {
	const ttl = time.Second
	o := handoverKeyspace(t, 2)
	a := handoverSequencer(t, o, "a", cassandra.LatestSchemaVersion(), ttl, nil)
	t.Cleanup(func() { handoverClose(a) })
	var (
		slept         atomic.Bool
		before, after time.Time
		shard0Owned   atomic.Bool
	)
	a.cfg.Log.Fault = func(op string, shard int, err error) error {
		if op == "open" && shard == 1 && slept.CompareAndSwap(false, true) {
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if slices.Contains(a.Owned(), 0) {
					shard0Owned.Store(true)
					break
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if o, err := a.readOwner(ctx, 0); err == nil {
				before = o.LeaseUntil
			}
			time.Sleep(4 * ttl) // a long catch-up, say
			if o, err := a.readOwner(ctx, 0); err == nil {
				after = o.LeaseUntil
			}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !slept.Load() || !shard0Owned.Load() {
		t.Fatalf("shard 1's take did not overlap shard 0's registration (slept %v): takeovers run one after another", slept.Load())
	}
	if !after.After(before) {
		t.Errorf("shard 0, taken by the first tick, was not renewed during shard 1's slow first-tick takeover: lease until %s before and after %v",
			before.Format(time.StampMilli), 4*ttl)
	}
}

// TestCloseReleasesATakeoverInFlight: Close ends a takeover caught up in
// its catch-up and releases its claim, so the next owner need not wait a
// lease TTL; Close does not wait for the catch-up.
func TestCloseReleasesATakeoverInFlight(t *testing.T) {
	const ttl = time.Second
	o := handoverKeyspace(t, 1)
	a := handoverSequencer(t, o, "a", cassandra.LatestSchemaVersion(), ttl, nil)
	var entered atomic.Bool
	a.cfg.Log.Fault = func(op string, shard int, err error) error {
		if op == "open" {
			entered.Store(true)
			for a.takeBase.Err() == nil { // until Close ends the takes
				time.Sleep(10 * time.Millisecond)
			}
			return context.Canceled // a catch-up read cut short by the take's context
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.tick(ctx); err != nil {
		t.Fatal(err)
	}
	handoverWait(t, "the takeover's catch-up", entered.Load)
	start := time.Now()
	handoverClose(a)
	t.Logf("Close took %v", time.Since(start).Round(time.Millisecond))
	row, err := a.readOwner(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if row.Owner != "" {
		t.Errorf("after Close during the catch-up the shard is owned by %q at epoch %d, want released", row.Owner, row.Epoch)
	}
}

// TestFlushRenewsItsStaleLease: a flush that finds its shard's lease stale
// (the ownership tick held up: here, not run at all) renews it itself and
// reads on, rather than refusing a read that no other instance could
// answer; the lease row shows the renewal.
func TestFlushRenewsItsStaleLease(t *testing.T) {
	const ttl = time.Second
	o := handoverKeyspace(t, 1)
	a := handoverSequencer(t, o, "a", cassandra.LatestSchemaVersion(), ttl, nil)
	t.Cleanup(func() { handoverClose(a) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.tickAndTake(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.Owned(), 0) {
		t.Fatalf("alone, A owns %v", a.Owned())
	}
	before, err := a.readOwner(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl) // no tick: the lease is stale (7/8 of a TTL)
	a.mu.Lock()
	sh := a.shards[0]
	a.mu.Unlock()
	if sh.leaseFresh() {
		t.Fatal("the lease is still fresh a TTL after its last renewal")
	}
	if err := a.Flush(ctx, "stale-1"); err != nil {
		t.Fatalf("flush on a stale lease, no other instance alive: %v", err)
	}
	after, err := a.readOwner(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !sh.leaseFresh() || !after.LeaseUntil.After(before.LeaseUntil) || after.Epoch != before.Epoch {
		t.Fatalf("after the flush: fresh %v, lease until %s (before %s), epoch %d (before %d)",
			sh.leaseFresh(), after.LeaseUntil.Format(time.StampMilli), before.LeaseUntil.Format(time.StampMilli), after.Epoch, before.Epoch)
	}
}
