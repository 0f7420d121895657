package shardstore_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/log/storetest"
)

// conformance is one configuration of the shard-log store the
// conformance suite runs against.
type conformance struct {
	name        string
	instances   int
	shards      int
	segmentRows int64 // 0: the default
	fillDelay   time.Duration
	commits     int // CommitsInFlight
	idBudget    int // IDBudget
	mod         func(*cassandra.Options)
}

// TestConformance runs package storetest's bodies against the shard-log
// store in every configuration that changes how an append travels: one
// shard or several, one instance or two forwarding to each other
// in-process (as over HTTP, through Options.Forward and AppendLocal),
// small buckets and pages, and log segments so small that every body
// crosses many (and a restart's catch-up walks them).
func TestConformance(t *testing.T) {
	for _, c := range []conformance{
		{name: "1x1", instances: 1, shards: 1},
		{name: "1x8", instances: 1, shards: 8, commits: 2}, // eight shards taking turns at two commits
		{name: "2x4", instances: 2, shards: 4},
		{name: "SmallBuckets", instances: 1, shards: 4, mod: func(o *cassandra.Options) {
			o.BucketMaxEvents = storetest.MaxAppend + 1
			o.Limits.MaxEventsPerAppend = storetest.MaxAppend
			o.PageSize = 3
		}},
		{name: "SmallSegments", instances: 2, shards: 2, segmentRows: 5},
		// Appends answered long before their streams are written: every
		// read, on either instance, must have the owner write first.
		{name: "2x4FillDelay", instances: 2, shards: 4, fillDelay: time.Minute},
		// Heads give up their ids as soon as their commits are filled:
		// retries are recognised by looking ids up in the partitions.
		{name: "TinyIDBudget", instances: 1, shards: 1, idBudget: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Configurations run side by side (as many as -parallel
			// allows), and each migrates the next body's keyspace while a
			// body runs: creating and dropping keyspaces is most of the
			// time, and it overlaps well.
			t.Parallel()
			keyspaces := storetest.Prepare(t, 1, func() (cassandra.Options, error) { return c.migrate(t) },
				func(o cassandra.Options) { cassandratest.DropBounded(t, o) })
			storetest.Run(t, func(t *testing.T, cfg storetest.Config) storetest.Cluster {
				o := keyspaces.Take(t)
				t.Cleanup(func() { keyspaces.Discard(o) })
				return c.open(t, o, cfg)
			})
		})
	}
}

// migrate creates a fresh keyspace with the configuration's layout.
func (c conformance) migrate(t *testing.T) (cassandra.Options, error) {
	o := cassandratest.Options(t)
	o.Shards, o.SegmentRows = c.shards, c.segmentRows
	if c.mod != nil {
		c.mod(&o)
	}
	return cassandratest.Migrate(t, o)
}

// open opens the configuration's instances on the keyspace of o, with a
// body's cfg laid over o. Instances forward to each other in-process.
func (c conformance) open(t *testing.T, o cassandra.Options, cfg storetest.Config) storetest.Cluster {
	t.Helper()
	applyConfig(&o, cfg)
	var (
		mu    sync.Mutex
		live  = map[*shardstore.Store]bool{}
		peers shardstoretest.Peers
		gen   int
	)
	// spread describes the shards each live instance owns, and tells
	// whether every shard has an owner and whether an instance has none.
	spread := func() (desc string, covered, bare bool) {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		var each []string
		for s := range live {
			owned := s.Owned()
			slices.Sort(owned)
			total += len(owned)
			bare = bare || len(owned) == 0
			each = append(each, fmt.Sprint(owned))
		}
		slices.Sort(each)
		return strings.Join(each, ""), total == c.shards, bare
	}
	closeStore := func(st log.Store) {
		s := st.(*shardstore.Store)
		mu.Lock()
		delete(live, s)
		mu.Unlock()
		s.Close()
	}
	openInstance := func(t *testing.T, i int) log.Store {
		io := o
		if cfg.Clock != nil {
			io.Now = cfg.Clock(i)
		}
		// The shards spread over the live instances by rendezvous hashing
		// of their random ids, which leaves one without a shard now and
		// then (two instances, two shards: one join in four); a
		// configuration of two instances means two owners, so the joining
		// instance then rejoins as another. Ownership is taken as settled
		// once it has held still for a while (handovers come one shard at
		// a time, within a tick or two of a join).
		for attempt := 0; ; attempt++ {
			mu.Lock()
			gen++
			addr := fmt.Sprintf("instance-%d.%d", i, gen)
			mu.Unlock()
			s := open(t, shardstore.Options{Cassandra: io, Address: addr, Forward: peers.Forward, FlushRemote: peers.FlushRemote, LeaseTTL: 2 * time.Second, FillDelay: c.fillDelay, CommitsInFlight: c.commits, IDBudget: c.idBudget})
			peers.Add(addr, s)
			mu.Lock()
			live[s] = true
			mu.Unlock()
			var (
				deadline      = time.Now().Add(30 * time.Second)
				last          string
				covered, bare bool
				since         = time.Now()
			)
			for time.Now().Before(deadline) {
				now, cov, br := spread()
				if now != last {
					last, covered, bare, since = now, cov, br, time.Now()
				}
				held := time.Since(since)
				if covered && (!bare && held > 1500*time.Millisecond || bare && held > 6*time.Second) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			switch {
			case !covered:
				closeStore(s)
				t.Fatalf("instance %d: the instances own %s of %d shards: shards without an owner", i, last, c.shards)
			case !bare:
				return s
			case attempt == 4:
				// Still uneven (a loaded node delays handovers): a valid
				// cluster all the same, with one instance forwarding all.
				t.Logf("instance %d (%s): the instances own %s; going on with that", i, addr, last)
				return s
			}
			t.Logf("instance %d (%s): the instances own %s: it rejoins as another", i, addr, last)
			closeStore(s)
		}
	}
	return storetest.NewInstances(t, c.instances, openInstance, closeStore)
}

// applyConfig lays a body's requests over the configuration's options.
func applyConfig(o *cassandra.Options, cfg storetest.Config) {
	if cfg.BucketWidth != 0 {
		o.BucketWidth = cfg.BucketWidth
	}
	if cfg.BucketMaxEvents != 0 {
		o.BucketMaxEvents = cfg.BucketMaxEvents
	}
	if cfg.MaxEventsPerAppend != 0 {
		o.Limits.MaxEventsPerAppend = cfg.MaxEventsPerAppend
	}
	if cfg.PageSize != 0 {
		o.PageSize = cfg.PageSize
	}
}
