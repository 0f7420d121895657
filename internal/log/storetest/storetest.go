package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// MaxAppend is the most events a body puts in one append. A configuration
// must accept appends of this size (events per append and bucket caps at
// least MaxAppend).
const MaxAppend = 4

// Config is what a body asks of the stores it gets. A zero field leaves the
// configuration's own setting (or the backend's default).
type Config struct {
	// BucketWidth is the time window of one stream partition.
	BucketWidth time.Duration
	// BucketMaxEvents caps the events of one stream partition.
	BucketMaxEvents int64
	// MaxEventsPerAppend is the events-per-append limit (Limits).
	MaxEventsPerAppend int
	// PageSize of range reads.
	PageSize int
	// Clock, if set, gives instance i its clock: the factory calls it each
	// time it opens instance i (also on Restart) and uses the result as the
	// store's Now.
	Clock func(instance int) func() time.Time
}

// Cluster is one configuration's instances sharing one fresh keyspace.
type Cluster interface {
	// Stores returns the open instances, at least one. A Restart replaces
	// element i: take the slice again after one.
	Stores() []log.Store
	// Restart closes instance i and opens a new one in its place on the
	// same keyspace and Config, as a process restart would: no caches, its
	// Clock asked anew. Callers restart only while no call is in flight on
	// that instance.
	Restart(t *testing.T, i int)
}

// Factory makes a fresh keyspace configured by cfg and opens the
// configuration's instances on it. It registers with t whatever must be
// closed or dropped when the body ends, and fails t if it cannot.
type Factory func(t *testing.T, cfg Config) Cluster

// Options adjust Run for a backend.
type Options struct {
	// Skip names bodies or their subtests (as in go test -run, relative to
	// Run's test: "Idempotency/RetryAfterRestart") the backend does not run,
	// with the reason: a real difference in semantics, documented where the
	// option is set.
	Skip map[string]string
}

// suite is one Run: the factory and what to skip.
type suite struct {
	f    Factory
	opts Options
	root string // t.Name() of Run's test
}

// body is one test body: it makes its own cluster through the factory.
type body struct {
	name string
	fn   func(t *testing.T, s *suite)
}

var bodies = []body{
	{"AppendRead", testAppendRead},
	{"ConcurrentExact", testConcurrentExact},
	{"Idempotency", testIdempotency},
	{"Linearizable", testLinearizable},
	{"Buckets", testBuckets},
	{"ClockSkew", testClockSkew},
	{"Groups", testGroups},
}

// Run runs every body against f, each on a cluster of its own.
func Run(t *testing.T, f Factory) { RunWith(t, f, Options{}) }

// RunWith is Run with options.
func RunWith(t *testing.T, f Factory, opts Options) {
	s := &suite{f: f, opts: opts, root: t.Name()}
	for _, b := range bodies {
		s.run(t, b.name, func(t *testing.T) { b.fn(t, s) })
	}
}

// run runs fn as subtest name of t unless the options skip it.
func (s *suite) run(t *testing.T, name string, fn func(t *testing.T)) bool {
	return t.Run(name, func(t *testing.T) {
		rel := strings.TrimPrefix(strings.TrimPrefix(t.Name(), s.root), "/")
		if why, ok := s.opts.Skip[rel]; ok {
			t.Skip(why)
		}
		fn(t)
	})
}

// cluster asks the factory for a fresh cluster, timing it.
func (s *suite) cluster(t *testing.T, cfg Config) Cluster {
	t.Helper()
	start := time.Now()
	c := s.f(t, cfg)
	if len(storesOf(t, c)) == 0 {
		t.Fatal("storetest: the factory returned no instances")
	}
	t.Logf("cluster of %d instance(s) ready in %v", len(c.Stores()), time.Since(start).Round(time.Millisecond))
	return c
}

// storesOf returns c's instances, failing t if one is missing (its
// restart failed).
func storesOf(t testing.TB, c Cluster) []log.Store {
	t.Helper()
	stores := c.Stores()
	for i, s := range stores {
		if s == nil {
			t.Fatalf("instance %d is not open (its restart failed)", i)
		}
	}
	return stores
}

// Instances is a Cluster of instances opened by Open and closed by Close,
// for factories to return. The zero value is not usable: see NewInstances.
type Instances struct {
	open  func(t *testing.T, i int) log.Store
	close func(log.Store)

	mu     sync.Mutex
	stores []log.Store
}

// NewInstances opens n instances with open(t, 0..n-1), in order, and closes
// them with close when t ends (also those a Restart opened). open fails t
// when it cannot open one.
func NewInstances(t *testing.T, n int, open func(t *testing.T, i int) log.Store, close func(log.Store)) *Instances {
	t.Helper()
	c := &Instances{open: open, close: close}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.stores {
			if s != nil {
				close(s)
			}
		}
		c.stores = nil
	})
	for i := 0; i < n; i++ {
		s := open(t, i)
		c.mu.Lock()
		c.stores = append(c.stores, s)
		c.mu.Unlock()
	}
	return c
}

// Stores implements Cluster.
func (c *Instances) Stores() []log.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]log.Store(nil), c.stores...)
}

// Restart implements Cluster.
func (c *Instances) Restart(t *testing.T, i int) {
	t.Helper()
	c.mu.Lock()
	old := c.stores[i]
	c.stores[i] = nil
	c.mu.Unlock()
	c.close(old)
	s := c.open(t, i)
	c.mu.Lock()
	c.stores[i] = s
	c.mu.Unlock()
}
