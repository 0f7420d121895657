package shardstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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
