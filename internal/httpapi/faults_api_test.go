package httpapi_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/eventlog/eventlog/internal/log"
)

// faultServer is the API over a real store whose connections to Cassandra
// go through a fault dialer.
func faultServer(tb testing.TB, d *cassandratest.FaultyDialer, armed *atomic.Bool) (*testServer, shardstore.Options) {
	tb.Helper()
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Dialer = d
		o.Timeout = 2 * time.Second
		so.BeforeCommit = func(int) {
			if armed.Load() {
				d.DropResponses.Store(true)
			}
		}
	})
	tb.Cleanup(d.CloseAll)
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Store: store, Opts: opts, API: api, Server: httptest.NewServer(spectest.Handler(tb, api))}
	tb.Cleanup(ts.Close)
	return ts, opts
}

// TestOutcomeUnknownOverHTTP: an append whose answer from Cassandra is lost
// is 504 outcome_unknown — never 201 or 409 — and the client's retry with
// the same ids, through another instance, is 200 with the original
// versions.
func TestOutcomeUnknownOverHTTP(t *testing.T) {
	d := &cassandratest.FaultyDialer{}
	var armed atomic.Bool
	ts, opts := faultServer(t, d, &armed)
	// Two appends first, so every statement is prepared on the connection.
	ts.MustAppend(t, "fault-1", 1)
	ts.MustAppend(t, "fault-1", 1)

	body := `{"expected_version": 2, "events": [{"id": "0190a1b2-0000-7000-8000-0000000000f1", "type": "E", "data": {"n": 1}}]}`
	armed.Store(true)
	MustProblem(t, ts.Append(t, "fault-1", body), 504, "outcome_unknown")

	o := opts
	o.Cassandra.Dialer, o.BeforeCommit = nil, nil
	other, err := httpapi.New(shardstoretest.Reopen(t, o), httpapi.Config{Limits: testLimits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ots := &testServer{Server: httptest.NewServer(spectest.Handler(t, other))}
	defer ots.Close()
	// The cut-off instance's shards move within a few lease TTLs; until
	// then the other answers 503 (nothing written), and the client retries.
	r := ots.Append(t, "fault-1", body)
	for deadline := time.Now().Add(time.Minute); r.Status == 503 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		r = ots.Append(t, "fault-1", body)
	}
	if r.Status != 200 {
		t.Fatalf("retry through another instance: %s", r)
	}
	if m := r.JSON(t); m["duplicate"] != true || m["first_version"] != float64(3) {
		t.Fatalf("retry result: %s", r.Body)
	}
	ots.MustVersion(t, "fault-1", 3)
}

// TestUnavailableOverHTTP: with Cassandra unreachable, an append is 503
// unavailable (nothing written) and /readyz is 503.
func TestUnavailableOverHTTP(t *testing.T) {
	d := &cassandratest.FaultyDialer{}
	var armed atomic.Bool
	ts, opts := faultServer(t, d, &armed)
	ts.MustAppend(t, "down-1", 1)

	d.Refuse.Store(true)
	d.CloseAll() // the driver loses its pool and cannot reconnect
	body := `{"events": [{"id": "0190a1b2-0000-7000-8000-0000000000f2", "type": "E", "data": {}}]}`
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := ts.Append(t, "down-1", body)
		if r.Status == 503 {
			MustProblem(t, r, 503, "unavailable")
			break
		}
		if r.Status == 201 || time.Now().After(deadline) {
			t.Fatalf("append with Cassandra unreachable: %s", r)
		}
		time.Sleep(100 * time.Millisecond) // the driver notices the closed pool
	}
	if r := ts.Do(t, "GET", "/readyz", nil); r.Status != 503 {
		t.Fatalf("readyz with Cassandra unreachable: %s", r)
	}
	// Nothing was written.
	o := opts
	o.Cassandra.Dialer, o.BeforeCommit = nil, nil
	s := shardstoretest.Reopen(t, o)
	info, err := s.Info(t.Context(), "down-1")
	for deadline := time.Now().Add(time.Minute); errors.Is(err, log.ErrUnavailable) && time.Now().Before(deadline); {
		time.Sleep(time.Second) // the cut-off instance's shards move
		info, err = s.Info(t.Context(), "down-1")
	}
	if err != nil || info.Version != 1 {
		t.Fatalf("after the outage: %+v %v", info, err)
	}
}

// TestLongOutageIsUnavailable: with Cassandra unreachable long enough for
// the driver's heartbeat to give up on its connections (six unanswered
// heartbeats), the reads in flight on them fail with the driver's
// "heartbeat failed", which was answered 500 internal; clients do not
// retry a 500, so a feed consumer or a replay stopped for good on a
// transient outage. Every read is 503 unavailable, the heartbeat's
// failure included.
func TestLongOutageIsUnavailable(t *testing.T) {
	d := &cassandratest.FaultyDialer{}
	var logs syncBuffer
	store, _ := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Dialer = d
		o.Timeout = time.Second // the heartbeat gives up after about 6 × (5 s + this)
	})
	t.Cleanup(d.CloseAll)
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Store: store, API: api, Server: httptest.NewServer(spectest.Handler(t, api))}
	t.Cleanup(ts.Close)
	ts.MustAppend(t, "outage-1", 3)
	for _, p := range []string{"/v1/streams/outage-1/events", "/v1/streams/outage-1", "/v1/feeds/all"} {
		if r := ts.Do(t, "GET", p, nil); r.Status != 200 {
			t.Fatalf("GET %s before the outage: %s", p, r)
		}
	}

	d.DropRequests.Store(true)
	defer d.DropRequests.Store(false)
	heartbeatFailed := func() bool {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return strings.Contains(logs.b.String(), "heartbeat failed")
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		others []string
		stop   atomic.Bool
	)
	// Feed reads query the shard logs at once (a stream's read first
	// waits for its shard's owner, which loses its lease in the outage):
	// many, so that some query is in flight on every connection when the
	// heartbeat gives up on it.
	paths := []string{"/v1/streams/outage-1/events", "/v1/streams/outage-1"}
	for range 8 {
		paths = append(paths, "/v1/feeds/all")
	}
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				res, err := ts.Client().Get(ts.URL + p)
				if err != nil {
					mu.Lock()
					others = append(others, fmt.Sprintf("GET %s: %v", p, err))
					mu.Unlock()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 503 {
					mu.Lock()
					others = append(others, fmt.Sprintf("GET %s: %d %s", p, res.StatusCode, b))
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !heartbeatFailed() && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the reads the failed heartbeat ended are answered
	stop.Store(true)
	wg.Wait()
	if !heartbeatFailed() {
		t.Fatal("no read saw the driver's heartbeat fail in 3 minutes: the test did not reach its case")
	}
	for _, o := range others {
		t.Errorf("with Cassandra unreachable: %s, want 503 unavailable", o)
	}
	// Back once Cassandra answers again. (Waited for also so that the
	// store closes on a driver done reconnecting: gocql's Session.Close
	// has been seen to hang when called during its control connection's
	// reconnection.)
	d.DropRequests.Store(false)
	r := ts.Do(t, "GET", "/v1/streams/outage-1/events", nil)
	for deadline := time.Now().Add(time.Minute); r.Status != 200 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		r = ts.Do(t, "GET", "/v1/streams/outage-1/events", nil)
	}
	if r.Status != 200 {
		t.Fatalf("a minute after the outage: %s", r)
	}
}
