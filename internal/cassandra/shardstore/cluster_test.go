package shardstore_test

// Fault tests against a real 3-node Cassandra cluster on loopback
// (scripts/cassandra-cluster): reliability scenarios S3 (a node killed and
// restarted under load), S4 (two of three nodes down) and S5 (a node paused
// mid-load), on two shard-store instances that forward to each other.
// After the faults every stream is checked (I1–I6, linearizability) and
// so is the all feed, which is the shard logs: each stream's events are
// exactly its events there, once each, in its order. They run only when EVENTLOG_TEST_CLUSTER names the cluster's
// nodes, e.g.
//
//	scripts/cassandra-cluster up
//	EVENTLOG_TEST_CLUSTER=127.0.0.11,127.0.0.12,127.0.0.13 go test -run TestCluster -count=1 ./internal/cassandra/shardstore
//
// Node N of the script is the Nth address. Every test leaves the cluster
// with all nodes up (scripts/cassandra-cluster up in t.Cleanup).
// EVENTLOG_TEST_CLUSTER_SEED replays a run's choices (which nodes fail,
// what each client does); the interleaving itself is the machine's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/log/storetest"
	"github.com/eventlog/eventlog/internal/partition"
)

// clusterQueryTimeout is the store's query timeout in these tests (the
// default): above the nodes' 5 s write / 3 s CAS timeouts, so a coordinator
// that answers in time reports its own timeout.
const clusterQueryTimeout = 10 * time.Second

// clusterPace is the mean pause of a client between two operations: the
// load stays modest (at most ~30 operations/s from 8 clients), so the nodes,
// which share 2 cores with everything else on the machine, keep up and a
// restarted node can start.
const clusterPace = 200 * time.Millisecond

// clusterStreams: one hot stream most clients write, and a few quieter ones.
var clusterStreams = []string{"hot-1", "cold-1", "cold-2", "cold-3"}

// cluster drives scripts/cassandra-cluster for one test.
type cluster struct {
	hosts  []string
	script string
	seed   uint64
	rng    *rand.Rand
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	env := os.Getenv("EVENTLOG_TEST_CLUSTER")
	if env == "" {
		t.Skip("EVENTLOG_TEST_CLUSTER not set (e.g. 127.0.0.11,127.0.0.12,127.0.0.13 after scripts/cassandra-cluster up)")
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot locate the test file to find scripts/cassandra-cluster")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "cassandra-cluster")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("cluster script not found: %v", err)
	}
	var hosts []string
	for _, h := range strings.Split(env, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) != 3 {
		t.Fatalf("EVENTLOG_TEST_CLUSTER=%q: want the 3 node addresses of scripts/cassandra-cluster", env)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EVENTLOG_TEST_CLUSTER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EVENTLOG_TEST_CLUSTER_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with EVENTLOG_TEST_CLUSTER_SEED=%d)", seed, seed)
	c := &cluster{hosts: hosts, script: script, seed: seed, rng: rand.New(rand.NewPCG(seed, 0))}
	// Start from a healthy cluster whatever an earlier test left.
	if err := c.run(t, 6*time.Minute, "up"); err != nil {
		t.Fatal(err)
	}
	c.settleSchema(t)
	return c
}

// schemaLine is a line of nodetool describecluster's "Schema versions":
// a version and the nodes that have it.
var schemaLine = regexp.MustCompile(`^\s+([0-9a-f]{8}-[0-9a-f-]{27}): \[(.*)\]`)

// settleSchema waits, bounded, for the nodes to agree on the schema before
// a test creates its keyspace: a node an earlier test killed and restarted
// (S3) can keep an old schema version for minutes, and a keyspace created
// meanwhile fails ("Unknown CF …") or never reaches agreement (seen in
// CI). The nodes outside the largest group first reset their local schema
// (nodetool resetlocalschema), which makes them pull it again. When that
// has not helped within a minute (CI of Session 17: a node kept its own
// version through every reset, in S4 and in S5), the cluster starts again
// from empty directories (about 45 s in CI): no test needs an earlier
// test's data, and a fresh cluster has one schema.
func (c *cluster) settleSchema(t *testing.T) {
	t.Helper()
	if c.agree(t, time.Minute) {
		return
	}
	t.Logf("the nodes still disagree on the schema; starting the cluster again from empty directories")
	c.must(t, 5*time.Minute, "down", "--wipe")
	c.must(t, 6*time.Minute, "up")
	if !c.agree(t, 2*time.Minute) {
		t.Fatal("a freshly started cluster disagrees on the schema")
	}
}

// agree reports whether the nodes agree on the schema within d, resetting
// the local schema of the nodes outside the largest group meanwhile.
func (c *cluster) agree(t *testing.T, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, err := c.output(t, time.Minute, "nodetool", "1", "describecluster")
		var groups [][]string
		for _, line := range strings.Split(out, "\n") {
			if m := schemaLine.FindStringSubmatch(line); m != nil {
				groups = append(groups, strings.Split(m[2], ", "))
			}
		}
		if err == nil && len(groups) == 1 {
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("the nodes disagree on the schema after %v: %v (%v)", d, groups, err)
			return false
		}
		wait := 3 * time.Second
		if len(groups) > 1 {
			// Give a reset node time to pull the schema before it is
			// reset again.
			wait = 10 * time.Second
			sort.Slice(groups, func(i, j int) bool { return len(groups[i]) > len(groups[j]) })
			t.Logf("schema versions differ: %v; resetting the others' local schema", groups)
			for _, g := range groups[1:] {
				for _, addr := range g {
					for n, h := range c.hosts {
						if strings.TrimPrefix(addr, "/") == h {
							if _, err := c.output(t, time.Minute, "nodetool", strconv.Itoa(n+1), "resetlocalschema"); err != nil {
								t.Logf("resetlocalschema on node %d: %v", n+1, err)
							}
						}
					}
				}
			}
		}
		time.Sleep(wait)
	}
}

// run runs the cluster script, bounded by timeout.
func (c *cluster) run(t testing.TB, timeout time.Duration, args ...string) error {
	t.Helper()
	_, err := c.output(t, timeout, args...)
	return err
}

// output runs the cluster script, bounded by timeout, and returns what it
// printed.
func (c *cluster) output(t testing.TB, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	cmd.Env = append(os.Environ(), "CASSANDRA_CLUSTER_ADDRESSES="+strings.Join(c.hosts, ","))
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		return out.String(), fmt.Errorf("cassandra-cluster %s: %v after %v\n%s", strings.Join(args, " "), err, took, out.String())
	}
	t.Logf("cassandra-cluster %s: ok in %v", strings.Join(args, " "), took)
	return out.String(), nil
}

// must runs the cluster script and fails the test (from the test goroutine
// only) when it fails.
func (c *cluster) must(t *testing.T, timeout time.Duration, args ...string) {
	t.Helper()
	if err := c.run(t, timeout, args...); err != nil {
		t.Fatal(err)
	}
}

// stores opens two shard-store instances on a fresh RF=3 keyspace at
// QUORUM / SERIAL (4 shards, the server's 5 s shard lease), and makes sure
// the cluster is whole again when the test ends (before the keyspace is
// dropped).
func (c *cluster) stores(t *testing.T) ([]log.Store, cassandra.Options) {
	t.Helper()
	s1, o := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.LeaseTTL = 5 * time.Second
		o := &so.Cassandra
		o.Hosts = c.hosts
		o.Replication = "NetworkTopologyStrategy:datacenter1=3"
		o.Consistency = "QUORUM"
		o.SerialConsistency = "SERIAL"
		o.Timeout = clusterQueryTimeout
	})
	s2 := shardstoretest.Reopen(t, o)
	t.Cleanup(func() {
		if err := c.run(t, 6*time.Minute, "up"); err != nil {
			t.Errorf("restoring the cluster: %v", err)
		}
	})
	return []log.Store{s1, s2}, o.Cassandra
}

// primary returns the node that coordinates the commits of stream's shard:
// the driver routes each statement to the first replica of its partition
// (token-aware, replicas not shuffled), the node owning the token of the
// shard's current log segment. Pausing or killing it hits the conditional
// writes in flight.
func (c *cluster) primary(t *testing.T, o cassandra.Options, stream string) int {
	t.Helper()
	owner := map[int64]int{} // token -> node
	var partition int64
	for i, h := range c.hosts {
		cl := gocql.NewCluster(h)
		cl.HostFilter = gocql.WhiteListHostFilter(h)
		cl.Timeout = 30 * time.Second
		sess, err := cl.CreateSession()
		if err != nil {
			t.Fatalf("session on %s: %v", h, err)
		}
		var tokens []string
		err = sess.Query(`SELECT tokens FROM system.local`).Scan(&tokens)
		if err == nil && i == 0 {
			partition, err = segmentToken(sess, o, stream)
		}
		sess.Close()
		if err != nil {
			t.Fatalf("tokens of %s: %v", h, err)
		}
		for _, tok := range tokens {
			v, err := strconv.ParseInt(tok, 10, 64)
			if err != nil {
				t.Fatalf("token %q of %s: %v", tok, h, err)
			}
			owner[v] = i + 1
		}
	}
	// The owner of the first token at or after the partition's, wrapping.
	best, first := int64(0), int64(0)
	bestOK, firstOK := false, false
	for tok := range owner {
		if !firstOK || tok < first {
			first, firstOK = tok, true
		}
		if tok >= partition && (!bestOK || tok < best) {
			best, bestOK = tok, true
		}
	}
	if !bestOK {
		best = first
	}
	return owner[best]
}

// segmentToken is the token of the shard log partition that takes the
// commits of stream's shard now.
func segmentToken(sess *gocql.Session, o cassandra.Options, stream string) (int64, error) {
	shard := partition.ShardOf(stream, o.Shards)
	var segment int64
	if err := sess.Query(`SELECT segment FROM `+o.Keyspace+`.shards WHERE shard = ?`, shard).Scan(&segment); err != nil {
		return 0, fmt.Errorf("segment of shard %d: %w", shard, err)
	}
	var tok int64
	err := sess.Query(`SELECT token(shard, segment) FROM `+o.Keyspace+`.shard_log WHERE shard = ? AND segment = ? LIMIT 1`, shard, segment).Scan(&tok)
	return tok, err
}

// nodes picks k distinct node numbers (1-based).
func (c *cluster) nodes(k int) []int {
	p := c.rng.Perm(len(c.hosts))[:k]
	for i := range p {
		p[i]++
	}
	sort.Ints(p)
	return p
}

type outcome int

const (
	outNone        outcome = iota
	outOK                  // acknowledged at first..
	outConflict            // wrong expected version, current
	outUnavailable         // refused before anything was written
	outUnknown             // outcome unknown: settled by retrying
)

func (o outcome) String() string {
	return [...]string{"none", "ok", "conflict", "unavailable", "unknown"}[o]
}

// clusterOp is one client operation: an append (req set) or a head read.
type clusterOp struct {
	client    int
	store     int
	stream    string
	req       log.AppendRequest // appends
	read      bool
	call, ret int64 // ns since the history started
	phase     string
	out       outcome
	first     int64 // outOK: first version
	current   int64 // outConflict: the stream's version; reads: the head
	wasUnsure bool  // outcome was unknown, settled by a retry
	err       error
	// serverIDs: the events carry no client ids (the server chooses them),
	// so an unknown outcome cannot be retried safely; it is settled by
	// finding the append's unique event type in the stream instead.
	serverIDs bool
	// knownBug: the error was a bare context.Canceled (tolerateDriverCanceled).
	knownBug bool
}

// clusterHistory records every operation of a run, for the checks.
type clusterHistory struct {
	start      time.Time
	mu         sync.Mutex
	ops        []*clusterOp
	phase      string
	unexpected []string
}

func newClusterHistory() *clusterHistory {
	return &clusterHistory{start: time.Now(), phase: "before"}
}

func (h *clusterHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *clusterHistory) setPhase(p string) {
	h.mu.Lock()
	h.phase = p
	h.mu.Unlock()
}

func (h *clusterHistory) begin(op *clusterOp) {
	h.mu.Lock()
	op.phase = h.phase
	h.mu.Unlock()
	op.call = h.now()
}

func (h *clusterHistory) record(op *clusterOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	if op.out == outNone && op.err != nil {
		h.unexpected = append(h.unexpected, fmt.Sprintf("client %d %s on %s (%s): %v", op.client, opKind(op), op.stream, op.phase, op.err))
	}
}

func opKind(op *clusterOp) string {
	if op.read {
		return "read"
	}
	return fmt.Sprintf("append(%v, %d)", op.req.Expected, len(op.req.Events))
}

// tolerateDriverCanceled accepted a known store bug instead of failing on
// it: a prepare cancelled by the driver (closing a connection to a paused
// node) surfaced as a bare context.Canceled. cql.ReadErr now classifies
// it as unavailable; the switch stays for a regression's diagnosis.
const tolerateDriverCanceled = false

// knownCanceled reports the known bug tolerateDriverCanceled describes.
func knownCanceled(err, ctxErr error) bool {
	return tolerateDriverCanceled && errors.Is(err, context.Canceled) && ctxErr == nil &&
		!errors.Is(err, log.ErrUnavailable) && !errors.Is(err, log.ErrOutcomeUnknown)
}

// classify sets op's outcome from an append's result; ctxErr is the
// caller's context error when the append returned.
func classify(op *clusterOp, res log.AppendResult, err, ctxErr error) {
	var wev *log.WrongExpectedVersionError
	switch {
	case err == nil:
		op.out, op.first, op.err = outOK, res.FirstVersion, nil
	case errors.As(err, &wev):
		op.out, op.current, op.err = outConflict, wev.Current, err
	case errors.Is(err, log.ErrOutcomeUnknown):
		op.out, op.err = outUnknown, err
	case errors.Is(err, log.ErrUnavailable):
		op.out, op.err = outUnavailable, err
	case knownCanceled(err, ctxErr):
		op.out, op.err, op.knownBug = outUnavailable, err, true
	default:
		op.out, op.err = outNone, err // unexpected
	}
}

// load runs clients appending (exact versions and "any", 1-3 events; most
// with client ids, a quarter with server ids) and reading heads on
// clusterStreams through both stores until stop is closed. Half of the
// operations go to the hot stream.
func (h *clusterHistory) load(stores []log.Store, clients int, seed uint64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(c)+1))
			seen := map[string]int64{}
			for {
				select {
				case <-stop:
					return
				case <-time.After(clusterPace/2 + time.Duration(rng.Int64N(int64(clusterPace)))):
				}
				stream := clusterStreams[0]
				if rng.IntN(2) == 0 {
					stream = clusterStreams[1+rng.IntN(len(clusterStreams)-1)]
				}
				op := &clusterOp{client: c, store: c % len(stores), stream: stream}
				s := stores[op.store]
				if rng.IntN(6) == 0 {
					h.readHead(s, op)
					if op.out == outOK {
						seen[stream] = op.current
					}
					continue
				}
				exp := log.Any
				if rng.IntN(2) == 0 {
					exp = log.ExpectedVersion(seen[stream])
				}
				n := 1 + rng.IntN(3)
				if rng.IntN(4) == 0 {
					// Server-chosen ids: with a cached head, nothing is read
					// before the conditional write.
					op.serverIDs = true
					op.req = log.AppendRequest{Stream: log.StreamID(stream), Expected: exp, Events: events(n, "X-"+uuid.NewString())}
				} else {
					op.req = log.AppendRequest{Stream: log.StreamID(stream), Expected: exp, Events: withIDs(events(n, fmt.Sprintf("C%d", c)))}
				}
				res := h.append(s, op, 3*clusterQueryTimeout)
				switch op.out {
				case outOK:
					seen[stream] = res.LastVersion
				case outConflict:
					seen[stream] = op.current
				}
			}
		}(c)
	}
	return &wg
}

// append sends op's append through s, bounded by timeout, and records it.
func (h *clusterHistory) append(s log.Store, op *clusterOp, timeout time.Duration) log.AppendResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h.begin(op)
	res, err := s.Append(ctx, op.req)
	op.ret = h.now()
	classify(op, res, err, ctx.Err())
	if op.out == outOK && op.serverIDs {
		for i := range op.req.Events {
			op.req.Events[i].ID = res.Events[i].ID
		}
	}
	h.record(op)
	return res
}

// readHead reads a stream's head (a serial read) into op.
func (h *clusterHistory) readHead(s log.Store, op *clusterOp) {
	op.read = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterQueryTimeout)
	defer cancel()
	h.begin(op)
	info, err := s.Info(ctx, log.StreamID(op.stream))
	op.ret = h.now()
	switch {
	case err == nil:
		op.out, op.current = outOK, info.Version
	case errors.Is(err, log.ErrStreamNotFound):
		op.out, op.current = outOK, 0
	case errors.Is(err, log.ErrUnavailable):
		op.out, op.err = outUnavailable, err
	case knownCanceled(err, ctx.Err()):
		op.out, op.err, op.knownBug = outUnavailable, err, true
	default:
		op.err = err
	}
	h.record(op)
}

// settle retries every append whose outcome was unknown with the same
// request (same ids, same expected version), alternating instances, until
// it gets a definite answer: acknowledged (the original or the retry
// wrote it) or a conflict (it was not written).
func (h *clusterHistory) settle(t *testing.T, stores []log.Store, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	n, tries := 0, 0
	for _, op := range h.ops {
		if op.read || op.out != outUnknown || op.serverIDs {
			continue
		}
		n++
		for attempt := 0; ; attempt++ {
			if time.Now().After(deadline) {
				t.Errorf("client %d %s on %s (%s) still unsettled after %v: %v", op.client, opKind(op), op.stream, op.phase, within, op.err)
				break
			}
			tries++
			ctx, cancel := context.WithTimeout(context.Background(), 3*clusterQueryTimeout)
			res, err := stores[(op.store+attempt)%len(stores)].Append(ctx, op.req)
			probe := &clusterOp{}
			classify(probe, res, err, ctx.Err())
			cancel()
			if probe.out == outUnknown || probe.out == outUnavailable {
				time.Sleep(500 * time.Millisecond)
				continue
			}
			op.out, op.first, op.current, op.err, op.wasUnsure = probe.out, probe.first, probe.current, probe.err, true
			op.ret = h.now()
			if probe.out == outNone {
				t.Errorf("retry of client %d %s on %s: %v", op.client, opKind(op), op.stream, err)
			}
			break
		}
	}
	t.Logf("settled %d unknown outcomes with %d retries", n, tries)
}

// settleByType settles an unknown append with server-chosen ids from the
// stream: its events (of a type no other append uses) are all present,
// contiguous, right after its expected version, or none is (I4).
func (h *clusterHistory) settleByType(t *testing.T, op *clusterOp, got []log.RecordedEvent, versions []int64) {
	t.Helper()
	switch {
	case len(versions) == 0:
		op.out, op.wasUnsure = outUnavailable, true // not written: it never happened
		t.Logf("%s: unknown append with server ids (%s) settled from the stream: not written", op.stream, opKind(op))
		return
	case len(versions) != len(op.req.Events):
		t.Errorf("%s: unknown append %s of %d events left %d of them, at %v", op.stream, op.req.Events[0].Type, len(op.req.Events), len(versions), versions)
		return
	}
	for i, v := range versions {
		if v != versions[0]+int64(i) || op.req.Expected.Exact() && versions[0] != int64(op.req.Expected)+1 {
			t.Errorf("%s: unknown append %s (expected %v) landed at %v", op.stream, op.req.Events[0].Type, op.req.Expected, versions)
			return
		}
	}
	for i := range op.req.Events {
		op.req.Events[i].ID = got[versions[i]-1].ID
	}
	op.out, op.first, op.wasUnsure, op.ret = outOK, versions[0], true, h.now()
	t.Logf("%s: unknown append with server ids (%s) settled from the stream: written at %v", op.stream, opKind(op), versions)
}

// summary logs the outcomes per phase (before unknowns are settled) and
// the slowest operations.
func (h *clusterHistory) summary(t *testing.T) {
	t.Helper()
	type key struct {
		phase string
		what  string
	}
	counts := map[key]int{}
	longest := map[string]time.Duration{}
	var phases []string
	for _, op := range h.ops {
		if d := time.Duration(op.ret - op.call); !op.wasUnsure && d > longest[op.phase] {
			longest[op.phase] = d
		}
		what := "append " + op.out.String()
		if op.read {
			what = "read " + op.out.String()
		}
		k := key{op.phase, what}
		if !sliceHas(phases, op.phase) {
			phases = append(phases, op.phase)
		}
		counts[k]++
	}
	for _, p := range phases {
		var parts []string
		for k, n := range counts {
			if k.phase == p {
				parts = append(parts, fmt.Sprintf("%s %d", k.what, n))
			}
		}
		sort.Strings(parts)
		t.Logf("phase %-11s %s; longest %v", p, strings.Join(parts, ", "), longest[p].Round(time.Millisecond))
	}
	slow := 0
	for _, op := range h.ops {
		if d := time.Duration(op.ret - op.call); d > 5*time.Second && slow < 12 {
			slow++
			t.Logf("slow: client %d store %d %s on %s called at %v (%s) took %v: %v %v", op.client, op.store, opKind(op), op.stream,
				time.Duration(op.call).Round(time.Millisecond), op.phase, d.Round(time.Millisecond), op.out, op.err)
		}
	}
}

func sliceHas(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// loadFor runs the load of clients for d and waits for it to end.
func (h *clusterHistory) loadFor(stores []log.Store, clients int, seed uint64, d time.Duration) {
	stop := h.startLoad(stores, clients, seed)
	time.Sleep(d)
	stop()
}

// startLoad starts the load of clients; the returned func stops it and
// waits for it to end (calling it again does nothing).
func (h *clusterHistory) startLoad(stores []log.Store, clients int, seed uint64) func() {
	stop := make(chan struct{})
	wg := h.load(stores, clients, seed, stop)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
}

// finish ends a scenario once the faults are over: it reports the
// history, settles every unknown outcome, and checks every invariant.
func (h *clusterHistory) finish(t *testing.T, stores []log.Store) {
	t.Helper()
	h.summary(t)
	h.settle(t, stores, 2*time.Minute)
	h.verify(t, stores[0])
}

// verify reads every stream after recovery and checks the invariants:
// every acknowledged event exactly once at its acknowledged version, each
// append contiguous (I1, I4), gapless versions and no id twice (I2, I3),
// nothing of an append reported as a conflict or unavailable, no event
// nobody was told about, and a linearizable history per stream (I5, which
// includes honest conflicts, I6).
func (h *clusterHistory) verify(t *testing.T, s log.Store) {
	t.Helper()
	for _, u := range h.unexpected {
		t.Errorf("unexpected error: %s", u)
	}
	for _, op := range h.ops {
		if op.knownBug {
			t.Logf("KNOWN BUG (tolerateDriverCanceled): client %d %s on %s (%s) returned %q, neither unavailable nor outcome unknown; checked as unavailable",
				op.client, opKind(op), op.stream, op.phase, op.err)
		}
	}
	total := 0
	byStream := map[log.StreamID][]log.RecordedEvent{}
	for _, stream := range clusterStreams {
		got := readAll(t, s.(*shardstore.Store), stream)
		byStream[log.StreamID(stream)] = got
		checkGapless(t, stream, got, len(got))
		total += len(got)
		at := map[uuid.UUID]int64{}
		byType := map[string][]int64{}
		for _, ev := range got {
			at[ev.ID] = ev.Version
			byType[ev.Type] = append(byType[ev.Type], ev.Version)
		}
		acked := 0
		var ops []porcupine.Operation
		for _, op := range h.ops {
			if op.stream != stream {
				continue
			}
			if !op.read && op.serverIDs && op.out == outUnknown {
				h.settleByType(t, op, got, byType[op.req.Events[0].Type])
			}
			if op.read {
				if op.out == outOK {
					ops = append(ops, porcupine.Operation{ClientId: op.client, Call: op.call, Return: op.ret, Input: storetest.StreamRead{}, Output: storetest.StreamReadOut{Version: op.current}})
				}
				continue
			}
			in := storetest.StreamAppend{Expected: op.req.Expected, N: int64(len(op.req.Events))}
			switch op.out {
			case outOK:
				acked += len(op.req.Events)
				for i, e := range op.req.Events {
					if v, ok := at[e.ID]; !ok || v != op.first+int64(i) {
						t.Errorf("%s: client %d %s (%s, unsure=%v) acknowledged event %s at %d; stream has it at %d (present %v)",
							stream, op.client, opKind(op), op.phase, op.wasUnsure, e.ID, op.first+int64(i), v, ok)
					}
				}
				ops = append(ops, porcupine.Operation{ClientId: op.client, Call: op.call, Return: op.ret, Input: in, Output: storetest.StreamAppendOut{OK: true, First: op.first}})
			case outConflict, outUnavailable:
				for _, e := range op.req.Events {
					if v, ok := at[e.ID]; ok {
						t.Errorf("%s: client %d %s (%s, unsure=%v) was reported %s (%v), but its event %s is at %d",
							stream, op.client, opKind(op), op.phase, op.wasUnsure, op.out, op.err, e.ID, v)
					}
				}
				if vs := byType[op.req.Events[0].Type]; op.serverIDs && len(vs) > 0 {
					t.Errorf("%s: client %d %s (%s) was reported %s (%v), but its events are at %v",
						stream, op.client, opKind(op), op.phase, op.out, op.err, vs)
				}
				if op.out == outConflict {
					ops = append(ops, porcupine.Operation{ClientId: op.client, Call: op.call, Return: op.ret, Input: in, Output: storetest.StreamAppendOut{Current: op.current}})
				}
			}
		}
		if acked != len(got) {
			t.Errorf("%s holds %d events, but %d were acknowledged", stream, len(got), acked)
		}
		res, info := porcupine.CheckOperationsVerbose(storetest.StreamModel, ops, time.Minute)
		switch res {
		case porcupine.Illegal:
			file := filepath.Join(t.TempDir(), stream+".html")
			_ = porcupine.VisualizePath(storetest.StreamModel, info, file)
			t.Errorf("%s: history of %d operations is not linearizable; visualisation: %s", stream, len(ops), file)
		case porcupine.Unknown:
			t.Logf("%s: linearizability check of %d operations timed out (inconclusive)", stream, len(ops))
		}
	}
	// The all feed (the shard logs) agrees with the streams: each stream's
	// events exactly once, in its order, and nothing else.
	checkAllFeed(t, s.(log.FeedStore), byStream)
	t.Logf("%d operations; %d events in %d streams; invariants hold: %v", len(h.ops), total, len(clusterStreams), !t.Failed())
}

// TestClusterS3KillRestart (S3): concurrent appenders on two instances
// while one node of three is killed (kill -9) and restarted, twice. Errors
// may only be unavailable, outcome unknown or honest conflicts; every
// unknown outcome is settled by retrying, then every invariant holds.
func TestClusterS3KillRestart(t *testing.T) {
	c := newCluster(t)
	stores, o := c.stores(t)
	h := newClusterHistory()
	stopLoad := h.startLoad(stores, 8, c.seed)
	defer stopLoad()

	cycles := 2
	if s := os.Getenv("EVENTLOG_TEST_CLUSTER_CYCLES"); s != "" {
		var err error
		if cycles, err = strconv.Atoi(s); err != nil || cycles < 1 {
			t.Fatalf("EVENTLOG_TEST_CLUSTER_CYCLES=%q: want a positive number", s)
		}
	}
	time.Sleep(3 * time.Second)
	for i := 1; i <= cycles; i++ {
		// First the coordinator of the hot stream's shard log, then any node.
		n := c.nodes(1)[0]
		if i == 1 {
			n = c.primary(t, o, clusterStreams[0])
		}
		t.Logf("cycle %d: kill node %d", i, n)
		h.setPhase(fmt.Sprintf("killed-%d", i))
		c.must(t, time.Minute, "kill", strconv.Itoa(n))
		time.Sleep(5 * time.Second)
		h.setPhase(fmt.Sprintf("restart-%d", i))
		c.must(t, 5*time.Minute, "start", strconv.Itoa(n))
		h.setPhase(fmt.Sprintf("after-%d", i))
		time.Sleep(3 * time.Second)
	}
	stopLoad()
	h.finish(t, stores)
}

// TestClusterS4QuorumLost (S4): two of three nodes paused (SIGSTOP), the
// coordinator of the hot stream's shard log among them. No append or read
// succeeds: appends fail as unavailable or outcome unknown, reads as
// unavailable, each within its bound. The owner decides an append against
// the head it holds and sends the group's conditional write, which cannot
// reach a quorum (outcome unknown, unless its SERIAL settling read says
// otherwise); its shard then stops, and appends wait for an owner, which
// cannot claim without a quorum (unavailable). After the nodes continue,
// the unknown appends are settled and every invariant holds.
func TestClusterS4QuorumLost(t *testing.T) {
	c := newCluster(t)
	stores, o := c.stores(t)
	h := newClusterHistory()

	// Some history first, with connections to every node; then one append
	// per stream, which leaves its shard's owner with the stream's head
	// loaded.
	h.loadFor(stores, 4, c.seed, 3*time.Second)
	heads := map[string]int64{}
	for i, stream := range clusterStreams {
		op := &clusterOp{client: 200 + i, store: i % len(stores), stream: stream,
			req: log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any, Events: withIDs(events(1, "Last"))}}
		res := h.append(stores[op.store], op, 3*clusterQueryTimeout)
		if op.out != outOK {
			t.Fatalf("append to %s before the fault: %v", stream, op.err)
		}
		heads[stream] = res.LastVersion
	}

	p := c.primary(t, o, clusterStreams[0])
	down := []int{p, 1 + (p+c.rng.IntN(2))%3}
	t.Logf("pause nodes %v (node %d coordinates %s)", down, p, clusterStreams[0])
	h.setPhase("quorum-lost")
	for _, n := range down {
		c.must(t, time.Minute, "stop", strconv.Itoa(n))
	}
	const window = 25 * time.Second
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		maxAppend, maxRead time.Duration
		appends, reads     int
	)
	until := time.Now().Add(window)
	for cl := range clusterStreams {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, 100+uint64(cl)))
			for i := 0; time.Now().Before(until); i++ {
				stream := clusterStreams[rng.IntN(len(clusterStreams))]
				s := stores[cl%len(stores)]
				if i%3 == 2 {
					ctx, cancel := context.WithTimeout(context.Background(), clusterQueryTimeout)
					start := time.Now()
					n := 0
					err := s.ReadStream(ctx, log.ReadRange{Stream: log.StreamID(stream)}, func(*log.RecordedEvent) error { n++; return nil })
					d := time.Since(start)
					if knownCanceled(err, ctx.Err()) {
						t.Logf("KNOWN BUG (tolerateDriverCanceled): read of %s returned %q", stream, err)
						err = fmt.Errorf("%w: %w", log.ErrUnavailable, err)
					}
					cancel()
					mu.Lock()
					reads++
					maxRead = max(maxRead, d)
					mu.Unlock()
					switch {
					case err == nil:
						t.Errorf("read of %s succeeded (%d events) with 2 of 3 nodes down", stream, n)
					case !errors.Is(err, log.ErrUnavailable):
						t.Errorf("read of %s with 2 of 3 nodes down: %v, want unavailable", stream, err)
					}
					continue
				}
				op := &clusterOp{client: 100 + cl, store: cl % len(stores), stream: stream}
				if i == 0 {
					// Its own stream, at the head its owner holds, server ids.
					op.stream, op.serverIDs = clusterStreams[cl], true
					op.req = log.AppendRequest{Stream: log.StreamID(op.stream), Expected: log.ExpectedVersion(heads[op.stream]),
						Events: events(1+rng.IntN(3), "S4-"+uuid.NewString())}
				} else {
					exp := log.Any
					if rng.IntN(2) == 0 {
						exp = log.ExpectedVersion(heads[stream])
					}
					op.req = log.AppendRequest{Stream: log.StreamID(stream), Expected: exp, Events: withIDs(events(1+rng.IntN(3), "Q"))}
				}
				start := time.Now()
				h.append(s, op, clusterQueryTimeout)
				d := time.Since(start)
				mu.Lock()
				appends++
				maxAppend = max(maxAppend, d)
				mu.Unlock()
				switch op.out {
				case outUnknown, outUnavailable:
				default:
					t.Errorf("%s with 2 of 3 nodes down: %v (%v), want unavailable or outcome unknown", opKind(op), op.out, op.err)
				}
			}
		}(cl)
	}
	wg.Wait()
	t.Logf("nodes %v paused: %d appends (longest %v), %d reads (longest %v), none succeeded",
		down, appends, maxAppend.Round(time.Millisecond), reads, maxRead.Round(time.Millisecond))
	// A read gives up at its deadline. An append waits for its group's
	// conditional write and settling read (a query timeout each), or for
	// an owner until its deadline.
	if maxRead > clusterQueryTimeout+5*time.Second {
		t.Errorf("a read took %v, beyond its %v deadline", maxRead, clusterQueryTimeout)
	}
	if maxAppend > clusterQueryTimeout+3*clusterQueryTimeout+5*time.Second {
		t.Errorf("an append took %v, beyond its %v deadline + 3 × the query timeout", maxAppend, clusterQueryTimeout)
	}

	h.setPhase("recovered")
	for _, n := range down {
		c.must(t, time.Minute, "cont", strconv.Itoa(n))
	}
	c.must(t, 5*time.Minute, "up")
	// The cluster takes appends again.
	h.loadFor(stores, 4, c.seed+1, 3*time.Second)
	h.finish(t, stores)
}

// TestClusterS5Pause (S5): one node paused (SIGSTOP) mid-load for longer
// than the query timeout, then continued: the node that coordinates the hot
// stream's shard log, so commits in flight there hang and end as outcome
// unknown or are settled by the SERIAL read (never a success or a conflict
// that lies); the others go on. After it returns, unknowns are settled by
// retrying and every invariant holds, in the streams and in the all feed
// (where, on the old per-stream path, a feed once missed events of appends
// settled by retries: here the feed is the log the retry is checked
// against).
func TestClusterS5Pause(t *testing.T) {
	c := newCluster(t)
	stores, o := c.stores(t)
	h := newClusterHistory()
	stopLoad := h.startLoad(stores, 8, c.seed)
	defer stopLoad()

	time.Sleep(3 * time.Second)
	// The coordinator of the hot stream's shard log: its commits in flight
	// hang.
	n := c.primary(t, o, clusterStreams[0])
	t.Logf("pause node %d", n)
	h.setPhase("paused")
	c.must(t, time.Minute, "stop", strconv.Itoa(n))
	// Longer than a query timeout plus a retry's server-side timeout, so
	// conditional writes sent to it time out too (outcome unknown).
	time.Sleep(25 * time.Second)
	h.setPhase("continued")
	c.must(t, time.Minute, "cont", strconv.Itoa(n))
	c.must(t, 5*time.Minute, "up")
	h.setPhase("after")
	time.Sleep(3 * time.Second)
	stopLoad()
	h.finish(t, stores)
}

// events returns n events of type typ without ids (the server chooses).
func events(n int, typ string) []log.ProposedEvent {
	out := make([]log.ProposedEvent, n)
	for i := range out {
		out[i] = log.ProposedEvent{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

// withIDs gives evs client-chosen ids.
func withIDs(evs []log.ProposedEvent) []log.ProposedEvent {
	for i := range evs {
		evs[i].ID, evs[i].ClientID = uuid.Must(uuid.NewV7()), true
	}
	return evs
}

// checkAllFeed reads the all feed from its beginning to its end and checks
// it against the streams' events: every event of every stream exactly
// once, with its id, in its stream's order, and no event of another
// stream (the keyspace is the test's own).
func checkAllFeed(t *testing.T, s log.FeedStore, streams map[log.StreamID][]log.RecordedEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := map[log.StreamID][]log.FeedEvent{}
	var after string
	n := 0
	for {
		page, err := s.ReadFeed(ctx, log.FeedRead{Feed: log.AllFeed, After: after, Limit: 1000})
		if err != nil {
			t.Fatalf("read the all feed after %d events: %v", n, err)
		}
		for _, e := range page.Events {
			got[e.Stream] = append(got[e.Stream], e)
		}
		n += len(page.Events)
		after = page.Next
		if len(page.Events) == 0 {
			break
		}
	}
	want := 0
	for stream, evs := range streams {
		want += len(evs)
		fe := got[stream]
		if len(fe) != len(evs) {
			t.Errorf("all feed: %d events of %s, the stream holds %d", len(fe), stream, len(evs))
		}
		for i := range min(len(fe), len(evs)) {
			if fe[i].Version != evs[i].Version || fe[i].ID != evs[i].ID {
				t.Errorf("all feed: event %d of %s is %s@%d, the stream has %s@%d", i, stream, fe[i].ID, fe[i].Version, evs[i].ID, evs[i].Version)
				break
			}
		}
	}
	for stream := range got {
		if _, ok := streams[stream]; !ok {
			t.Errorf("all feed: %d events of %s, which no test stream is", len(got[stream]), stream)
		}
	}
	t.Logf("all feed: %d events, the streams hold %d", n, want)
}
