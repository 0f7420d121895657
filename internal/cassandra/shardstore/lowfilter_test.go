package shardstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// TestLowIDFilter: an owner whose head of a stream past
// streams.LowVersions cannot hold its ids (loaded by another instance,
// 16 ids a head) looks up each append's ids; after the first lookup it
// keeps a filter of the stream's low ids, so new appends no longer read
// the partition's static row, while a retry of any earlier append, low or
// not, is still recognised at its version.
func TestLowIDFilter(t *testing.T) {
	o := newKeyspace(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = streams.LowVersions + 76
	reqs := make([]log.AppendRequest, n)
	a := open(t, shardstore.Options{Cassandra: o})
	for i := range reqs {
		reqs[i] = log.AppendRequest{Stream: "low-1", Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.Must(uuid.NewV7()), "Tested", fmt.Sprintf(`{"i":%d}`, i))}}
		if r, err := a.Append(ctx, reqs[i]); err != nil || r.FirstVersion != int64(i+1) {
			t.Fatalf("append %d: %+v %v", i, r, err)
		}
	}
	a.Close()

	reg := prometheus.NewRegistry()
	o.Registerer = reg
	b := open(t, shardstore.Options{Cassandra: o, IDsInHead: 16})
	defer b.Close()
	counter := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	const fresh = 40
	for i := range fresh {
		r, err := b.Append(ctx, log.AppendRequest{Stream: "low-1", Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.Must(uuid.NewV7()), "Tested", fmt.Sprintf(`{"new":%d}`, i))}})
		if err != nil || r.Duplicate || r.FirstVersion != int64(n+i+1) {
			t.Fatalf("new append %d: %+v %v, want version %d", i, r, err, n+i+1)
		}
	}
	lookups, lowReads := counter("eventlog_shard_id_lookups_total"), counter("eventlog_shard_low_id_reads_total")
	t.Logf("%d new appends: %v looked up, %v read the low ids", fresh, lookups, lowReads)
	if lookups < fresh/2 {
		t.Fatalf("%v of %d new appends looked up: the head held its ids, the test tests nothing", lookups, fresh)
	}
	if lowReads > 2 {
		t.Fatalf("%v of %d new appends read the static row of low ids: the filter spared few", lowReads, fresh)
	}
	for _, i := range rand.Perm(n)[:120] {
		r, err := b.Append(ctx, reqs[i])
		if err != nil || !r.Duplicate || r.FirstVersion != int64(i+1) {
			t.Fatalf("retry of append %d: %+v %v, want a duplicate at version %d", i, r, err, i+1)
		}
	}
	checkGapless(t, "low-1", readAll(t, b, "low-1"), n+fresh)
}

// TestLowIDFilterUnwritten: a stream passes version 1,024 on an owner
// that writes its streams only seconds after each commit, with appends
// in flight together: the low filter is made while the ids of its last
// low versions are committed but not yet written, so it must take them
// from the head. Once they are written and the head has dropped them,
// a retry of each is still a duplicate at its version.
func TestLowIDFilterUnwritten(t *testing.T) {
	o := newKeyspace(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const first = streams.LowVersions - 24
	a := open(t, shardstore.Options{Cassandra: o})
	if _, err := appendN(ctx, a, "unw-1", log.Any, first); err != nil {
		t.Fatal(err)
	}
	a.Close()

	b := open(t, shardstore.Options{Cassandra: o, IDsInHead: 16, FillDelay: 3 * time.Second})
	defer b.Close()
	const n = 100
	reqs := make([]log.AppendRequest, n)
	got := make([]int64, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range reqs {
		reqs[i] = log.AppendRequest{Stream: "unw-1", Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.Must(uuid.NewV7()), "Tested", fmt.Sprintf(`{"i":%d}`, i))}}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := b.Append(ctx, reqs[i])
			if err != nil || r.Duplicate {
				t.Errorf("append %d: %+v %v", i, r, err)
			}
			got[i] = r.FirstVersion
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Written, then dropped by the next commits: the head prunes again
	// only once its ids have doubled since the last pass, which could
	// drop none of them (all unwritten).
	time.Sleep(4 * time.Second)
	const more = 300
	for i := range more {
		if _, err := b.Append(ctx, log.AppendRequest{Stream: "unw-1", Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.Must(uuid.NewV7()), "Tested", fmt.Sprintf(`{"more":%d}`, i))}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, req := range reqs {
		r, err := b.Append(ctx, req)
		if err != nil || !r.Duplicate || r.FirstVersion != got[i] {
			t.Fatalf("retry of the append at version %d: %+v %v, want a duplicate", got[i], r, err)
		}
	}
	checkGapless(t, "unw-1", readAll(t, b, "unw-1"), first+n+more)
}
