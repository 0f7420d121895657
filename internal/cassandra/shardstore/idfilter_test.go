package shardstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestHotStreamIDFilter: a stream that takes more client ids than its
// head keeps (16 here) gets an id filter: new appends commit without an
// id lookup, while retries of appends committed long before — in the
// current bucket and the previous one (small buckets) — are still
// recognised, each at its version.
func TestHotStreamIDFilter(t *testing.T) {
	o := newKeyspace(t, 1)
	o.BucketMaxEvents = 150
	o.Limits.MaxEventsPerAppend = 5
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	s := open(t, shardstore.Options{Cassandra: o, IDsInHead: 16})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 400
	reqs := make([]log.AppendRequest, n)
	for i := range reqs {
		reqs[i] = log.AppendRequest{Stream: "hot-1", Expected: log.Any,
			Events: []log.ProposedEvent{ev(uuid.New(), "Tested", fmt.Sprintf(`{"i":%d}`, i))}}
		r, err := s.Append(ctx, reqs[i])
		if err != nil || r.FirstVersion != int64(i+1) || r.Duplicate {
			t.Fatalf("append %d: %+v %v", i, r, err)
		}
	}
	lookups := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "eventlog_shard_id_lookups_total" {
				var m *dto.Metric = mf.GetMetric()[0]
				return m.GetCounter().GetValue()
			}
		}
		t.Fatal("no eventlog_shard_id_lookups_total")
		return 0
	}
	l := lookups()
	t.Logf("%v of %d appends looked up", l, n)
	if l > n/4 {
		t.Fatalf("%v of %d appends were looked up: the filter spared few", l, n)
	}
	// Retries of the last 250 appends (versions 151–400: the current
	// bucket and the previous one), in random order.
	for _, i := range rand.Perm(250) {
		i += n - 250
		r, err := s.Append(ctx, reqs[i])
		if err != nil || !r.Duplicate || r.FirstVersion != int64(i+1) {
			t.Fatalf("retry of append %d: %+v %v, want a duplicate at version %d", i, r, err, i+1)
		}
	}
	checkGapless(t, "hot-1", readAll(t, s, "hot-1"), n)
}
