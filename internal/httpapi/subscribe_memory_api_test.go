package httpapi_test

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// TestIdleSubscriptionsHoldNoLargeBuffers: a stream subscription that
// sent a large event and now waits holds no buffer of that size: 20 idle
// subscribers that each sent a 1 MiB event keep far less than 20 MiB.
func TestIdleSubscriptionsHoldNoLargeBuffers(t *testing.T) {
	limits := log.Limits{MaxEventsPerAppend: 10, MaxEventBytes: 1 << 20, MaxSnapshotBytes: 64 << 10}
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits = limits
		so.Cassandra.Registerer = reg
	})
	cfg := httpapi.Config{Limits: limits, MaxBodyBytes: 2 << 20, Registry: reg,
		SubscribePoll: 100 * time.Millisecond, Heartbeat: time.Hour}
	api, err := httpapi.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Not through spectest's handler, which keeps every response body.
	ts := &testServer{Server: httptest.NewServer(api), Store: store, Opts: opts, API: api}
	t.Cleanup(ts.Close)
	const n = 20
	big := `{"events":[{"type":"Big","data":"` + strings.Repeat("x", 1<<20-16) + `"}]}`
	for i := range n {
		if r := ts.Append(t, fmt.Sprintf("big-%d", i), big); r.Status != 201 {
			t.Fatalf("append: %d %.200s", r.Status, r.Body)
		}
	}
	heap := func() uint64 {
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// Read once, so that what a first read keeps (caches, pools) is
	// there before the measure.
	ts.Do(t, "GET", "/v1/streams/big-0/events", nil)
	before := heap()
	subs := make([]*subscription, n)
	for i := range n {
		stream := fmt.Sprintf("big-%d", i)
		subs[i] = subscribe(t, ts, "/v1/streams/"+stream+"/subscribe", "Accept", "application/x-ndjson")
		if m := subs[i].nextEvent(t); m.event.Version != 1 {
			t.Fatalf("got %+v", m.event)
		}
	}
	idle := heap()
	t.Logf("heap before: %d MiB; with %d idle subscriptions: %d MiB", before>>20, n, idle>>20)
	if idle > before && idle-before > n<<20/2 {
		t.Fatalf("%d idle subscriptions hold %d MiB", n, (idle-before)>>20)
	}
}
