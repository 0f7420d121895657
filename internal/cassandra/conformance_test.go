package cassandra_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/log/storetest"
)

// TestConformance runs package storetest's bodies against the per-stream
// store, alone and as two instances sharing a keyspace (each with its own
// session and caches, as two server processes).
func TestConformance(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dInstances", n), func(t *testing.T) {
			// Side by side, each migrating the next body's keyspace while a
			// body runs: keyspace set-up is most of the time and overlaps
			// well.
			t.Parallel()
			keyspaces := storetest.Prepare(t, 1, func() (cassandra.Options, error) { return cassandratest.Migrate(t, cassandratest.Options(t)) },
				func(o cassandra.Options) { cassandratest.DropBounded(t, o) })
			storetest.Run(t, func(t *testing.T, cfg storetest.Config) storetest.Cluster {
				o := keyspaces.Take(t)
				t.Cleanup(func() { keyspaces.Discard(o) })
				return openConformance(t, n, o, cfg)
			})
		})
	}
}

// openConformance opens n stores on the keyspace of o, with a body's cfg
// laid over o.
func openConformance(t *testing.T, n int, o cassandra.Options, cfg storetest.Config) storetest.Cluster {
	t.Helper()
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
	open := func(t *testing.T, i int) log.Store {
		io := o
		if cfg.Clock != nil {
			io.Now = cfg.Clock(i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := cassandra.Open(ctx, io)
		if err != nil {
			t.Fatalf("open %s: %v", o.Keyspace, err)
		}
		return s
	}
	return storetest.NewInstances(t, n, open, func(s log.Store) { s.(*cassandra.Store).Close() })
}
