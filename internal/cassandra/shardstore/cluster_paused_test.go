package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestClusterS6AllPaused: every node of the 3-node cluster paused
// (SIGSTOP: a cluster-wide stall, or a partition between the instance and
// Cassandra) for longer than the driver waits on a silent connection (six
// heartbeats of 5 s and the query timeout each): it then closes its
// connections, and the reads in flight on them fail with its "gocql:
// heartbeat failed", with no host left to retry on. Those reads were
// log.ErrUnavailable's opposite, an internal error (HTTP 500, which
// clients do not retry). Every read that fails is unavailable. When the
// driver drops its hosts before a heartbeat fails under a read (about one
// pause in three), the nodes are resumed and paused again, once; a second
// miss skips the test (its case was not reached), after checking the
// reads that failed all the same. Part of CI's cluster job.
func TestClusterS6AllPaused(t *testing.T) {
	c := newCluster(t)
	s, _ := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.LeaseTTL = 5 * time.Second
		o := &so.Cassandra
		o.Hosts = c.hosts
		o.Replication = "NetworkTopologyStrategy:datacenter1=3"
		o.Consistency = "QUORUM"
		o.SerialConsistency = "SERIAL"
		o.Timeout = 2 * time.Second // the heartbeat gives up after about 6 × (5 s + this)
	})
	resume := func() {
		for n := 1; n <= 3; n++ {
			_ = c.run(t, time.Minute, "cont", strconv.Itoa(n))
		}
	}
	t.Cleanup(func() {
		resume()
		if err := c.run(t, 6*time.Minute, "up"); err != nil {
			t.Errorf("restoring the cluster: %v", err)
		}
	})
	ctx := context.Background()
	for i := range 4 {
		if _, err := appendN(ctx, s, fmt.Sprintf("paused-%d", i), log.Any, 5); err != nil {
			t.Fatal(err)
		}
	}
	for attempt := 1; ; attempt++ {
		reached := pauseAllAndRead(ctx, t, c, s)
		if reached || t.Failed() {
			return
		}
		if attempt == 2 {
			t.Skipf("no read saw the driver's heartbeat fail in %d pauses: the test did not reach its case", attempt)
		}
		t.Logf("pause %d: no read saw the driver's heartbeat fail; resuming the nodes and pausing them again", attempt)
		resume()
		if err := c.run(t, 6*time.Minute, "up"); err != nil {
			t.Fatalf("resuming the cluster: %v", err)
		}
		// Reads succeed again before the next pause: the driver has its
		// hosts back.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := s.ReadFeed(rctx, log.FeedRead{Feed: log.AllFeed, Limit: 100})
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reads fail two minutes after the nodes resumed: %v", err)
			}
			time.Sleep(time.Second)
		}
	}
}

// pauseAllAndRead pauses the three nodes and reads the all feed from
// eight goroutines until a read sees the driver's heartbeat fail (or three
// minutes pass), failing t for every read that fails otherwise than
// unavailable. It reports whether the heartbeat's failure was seen.
func pauseAllAndRead(ctx context.Context, t *testing.T, c *cluster, s *shardstore.Store) bool {
	t.Helper()
	for n := 1; n <= 3; n++ {
		c.must(t, time.Minute, "stop", strconv.Itoa(n))
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wrong     []string
		heartbeat atomic.Bool
		stop      atomic.Bool
	)
	kinds := map[string]int{}
	note := func(what string, err error) {
		mu.Lock()
		k := fmt.Sprint(err)
		if i := strings.LastIndex(k, ": "); i >= 0 {
			k = k[i+2:]
		}
		kinds[k]++
		mu.Unlock()
		if err != nil && strings.Contains(err.Error(), "heartbeat failed") {
			heartbeat.Store(true)
		}
		if err == nil || !errors.Is(err, log.ErrUnavailable) {
			mu.Lock()
			wrong = append(wrong, fmt.Sprintf("%s: %v", what, err))
			mu.Unlock()
		}
	}
	// Feed reads query the shard logs at once, so that some query is in
	// flight on every connection when the heartbeat gives up on it.
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := s.ReadFeed(rctx, log.FeedRead{Feed: log.AllFeed, Limit: 100})
				cancel()
				note(fmt.Sprintf("feed read %d", g), err)
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !heartbeat.Load() && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("reads' errors: %v", kinds)
	for _, w := range wrong {
		t.Errorf("with every node paused, %s; want unavailable", w)
	}
	return heartbeat.Load()
}
