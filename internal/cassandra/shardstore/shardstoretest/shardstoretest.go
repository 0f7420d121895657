// Package shardstoretest opens real shard stores (shardstore) for tests,
// each in a keyspace of its own (cassandratest), and lets the stores of
// one test binary forward appends and flushes to each other in-process,
// as server instances do over HTTP.
package shardstoretest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// NewStore migrates a fresh keyspace (after mod adjusts the options; 4
// shards unless mod says otherwise) and opens a shard store on it, with
// the server's 5 s shard lease (a shorter one lapses on a loaded test
// machine, and the shard has no owner until it is claimed again). The
// keyspace is dropped when the test ends.
func NewStore(tb testing.TB, mod func(*shardstore.Options)) (*shardstore.Store, shardstore.Options) {
	tb.Helper()
	o := shardstore.Options{Cassandra: cassandratest.Options(tb), LeaseTTL: 5 * time.Second}
	o.Cassandra.Shards = 4
	if mod != nil {
		mod(&o)
	}
	o.Cassandra = cassandratest.NewKeyspace(tb, func(co *cassandra.Options) { *co = o.Cassandra })
	return Reopen(tb, o), o
}

// Reopen opens another shard store on o's keyspace: its own session,
// heads and caches, as a second server instance would have. The stores a
// test binary opens forward appends and flushes to each other in-process
// (as over HTTP: the events are copied), so any of them takes any request;
// o.Forward and o.FlushRemote, if set, are kept.
func Reopen(tb testing.TB, o shardstore.Options) *shardstore.Store {
	tb.Helper()
	if o.Forward == nil {
		o.Forward = peers.Forward
	}
	if o.FlushRemote == nil {
		o.FlushRemote = peers.FlushRemote
	}
	o.Address = fmt.Sprintf("in-process-%d", instances.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, o)
	if err != nil {
		tb.Fatalf("open %s: %v", o.Cassandra.Keyspace, err)
	}
	peers.Add(o.Address, s)
	tb.Cleanup(func() {
		peers.Remove(o.Address)
		s.Close()
	})
	return s
}

var (
	instances atomic.Int64
	peers     Peers
)

// Peers delivers appends and flushes to in-process stores by address, as
// the HTTP hop between instances does (the events copied): a store's
// Options.Forward and Options.FlushRemote.
type Peers struct {
	m sync.Map // address -> *shardstore.Store
}

// Add makes s reachable at addr.
func (p *Peers) Add(addr string, s *shardstore.Store) { p.m.Store(addr, s) }

// Remove makes addr unreachable (an instance stopped or killed).
func (p *Peers) Remove(addr string) { p.m.Delete(addr) }

// Forward delivers an append to the store at addr.
func (p *Peers) Forward(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
	s, ok := p.m.Load(addr)
	if !ok {
		return log.AppendResult{}, fmt.Errorf("peer %s: %w", addr, log.ErrNotOwner)
	}
	evs := make([]log.ProposedEvent, len(req.Events))
	for i, e := range req.Events {
		e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
		evs[i] = e
	}
	req.Events = evs
	return s.(*shardstore.Store).AppendLocal(ctx, req)
}

// FlushRemote flushes stream on the store at addr.
func (p *Peers) FlushRemote(ctx context.Context, addr string, stream log.StreamID) error {
	s, ok := p.m.Load(addr)
	if !ok {
		return fmt.Errorf("peer %s: %w", addr, log.ErrNotOwner)
	}
	return s.(*shardstore.Store).FlushLocal(ctx, stream)
}
