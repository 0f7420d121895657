package sequencer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestHandoverAllAtOnce: a rolling upgrade moves every shard at once, and
// their drains one after another outlast the tick's deadline (a lease
// TTL). One tick must still hand over every shard, each committing and
// filling what it has queued and writing its release, so the new owner
// claims them all at its next tick. Handed over one at a time between
// renewals, as they first were, a tick reached four or five of sixteen:
// the rest went unrenewed until the next tick, and under one deadline
// for the whole tick the drain it fell in was cut (committed appends left
// unfilled, the shard left leased for a TTL).
//
// Each shard's drain is slowed (BeforeCommit) to about a quarter of the
// TTL: sixteen of them in a row take four TTLs.
func TestHandoverAllAtOnce(t *testing.T) {
	const (
		shards      = 16
		ttl         = 2500 * time.Millisecond
		queued      = 3 // appends queued per shard behind the one in flight
		commitDelay = 330 * time.Millisecond
	)
	o := handoverKeyspace(t, shards)

	// A's commits wait until their shard's handover begins (or the test
	// ends), so its drain, not the time before, commits what is queued.
	var (
		a       *Sequencer
		holding atomic.Bool
		entered atomic.Int64
		delay   atomic.Int64
	)
	ownedBy := func(s *Sequencer, id int) *shard {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.shards[id]
	}
	hold := func(id int) {
		entered.Add(1)
		for holding.Load() && ownedBy(a, id) != nil {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(delay.Load()))
	}
	a = handoverSequencer(t, o, "a", cassandra.LatestSchemaVersion(), ttl, hold)
	// B runs a newer binary: once live, every shard is its to own.
	b := handoverSequencer(t, o, "b", cassandra.LatestSchemaVersion()+1, ttl, nil)
	closeA := sync.OnceFunc(func() { handoverClose(a) })
	t.Cleanup(closeA)
	t.Cleanup(func() { holding.Store(false) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.tickAndTake(ctx); err != nil {
		t.Fatalf("first tick: %v", err)
	}
	if n := len(a.Owned()); n != shards {
		t.Fatalf("alone, A owns %d shards, want %d", n, shards)
	}
	stream := map[int]log.StreamID{} // one per shard
	for i := 0; len(stream) < shards; i++ {
		s := fmt.Sprintf("handover-%d", i)
		if id := partition.ShardOf(s, shards); stream[id] == "" {
			stream[id] = log.StreamID(s)
		}
	}

	type appended struct {
		shard int
		res   log.AppendResult
		err   error
	}
	var (
		mu   sync.Mutex
		acks []appended
	)
	ids := a.Owned()
	slices.Sort(ids)
	epochs := map[int]int64{}
	for _, id := range ids {
		epochs[id] = ownedBy(a, id).epoch
	}
	var (
		wg   sync.WaitGroup
		done []appended
	)
	send := func(id, n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := log.AppendRequest{Stream: stream[id], Expected: log.Any, Events: []log.ProposedEvent{
				{Type: "Queued", Data: []byte(fmt.Sprintf(`{"n":%d}`, n))}}}
			if err := req.Validate(log.DefaultLimits()); err != nil {
				panic(err)
			}
			actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer acancel()
			// Local: a queued append bounced by its shard's stop
			// fails here rather than going on to the next owner.
			res, err := a.AppendLocal(actx, req)
			mu.Lock()
			done = append(done, appended{id, res, err})
			mu.Unlock()
		}()
	}
	delay.Store(int64(commitDelay))
	holding.Store(true)
	base := entered.Load()
	for _, id := range ids {
		send(id, 0)
	}
	handoverWait(t, "a commit in flight on every shard", func() bool { return entered.Load()-base >= int64(len(ids)) })
	for _, id := range ids {
		for n := 1; n <= queued; n++ {
			send(id, n)
		}
	}
	handoverWait(t, "appends queued behind them", func() bool {
		for _, id := range ids {
			sh := ownedBy(a, id)
			sh.mu.Lock()
			n := len(sh.queue)
			sh.mu.Unlock()
			if n < queued {
				return false
			}
		}
		return true
	})
	if err := b.heartbeat(ctx); err != nil { // B is live (it claims nothing yet)
		t.Fatal(err)
	}
	start := time.Now()
	tctx, tcancel := context.WithTimeout(context.Background(), ttl) // as the ownership loop gives a tick
	err := a.tick(tctx)
	tcancel()
	took := time.Since(start)
	holding.Store(false) // the shards it kept commit theirs now
	wg.Wait()
	a.handovers.Wait() // the releases, after the drains
	if err != nil {
		t.Fatalf("handover tick: %v", err)
	}
	var handed []int
	for _, id := range ids {
		if ownedBy(a, id) == nil {
			handed = append(handed, id)
		}
	}
	t.Logf("the tick took %v and handed over %d of %d shards", took.Round(time.Millisecond), len(handed), len(ids))
	if len(handed) != len(ids) || took > ttl {
		t.Errorf("the tick took %v and handed over %d of %d shards (%v), want every shard within the TTL (%v)", took, len(handed), len(ids), handed, ttl)
	}

	// (a) Every append queued before the handover was committed by
	// its shard's drain.
	for _, d := range done {
		if d.err != nil {
			t.Errorf("shard %d: an append queued before the handover failed: %v", d.shard, d.err)
			continue
		}
		acks = append(acks, d)
	}
	// (b) Every shard handed over was released, at the epoch A held:
	// B may claim it at once rather than after a lease TTL.
	rows, err := a.readOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range handed {
		if r := rows[id]; r.Owner != "" || r.Epoch != epochs[id] {
			t.Errorf("shard %d was handed over but not released: owner %q at epoch %d (A held epoch %d)", id, r.Owner, r.Epoch, epochs[id])
		}
	}

	// B's first tick claims every shard, each released: a row left leased
	// is claimed only once seen unrenewed for a TTL.
	closeA()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { handoverClose(b) })
	if got := b.Owned(); len(got) != shards {
		slices.Sort(got)
		t.Errorf("B's first tick claimed %d of %d shards (%v): the others were not released", len(got), shards, got)
	}

	// The acknowledged appends are in their streams: the drains filled
	// what they committed.
	for id, s := range stream {
		have := map[int64]string{}
		err := b.cfg.Streams.Read(ctx, log.ReadRange{Stream: s}, func(e *log.RecordedEvent) error {
			have[e.Version] = e.ID.String()
			return nil
		})
		if err != nil {
			t.Errorf("shard %d: read %s: %v", id, s, err)
			continue
		}
		for _, d := range acks {
			if d.shard != id {
				continue
			}
			for _, e := range d.res.Events {
				if have[e.Version] != e.ID.String() {
					t.Errorf("shard %d: %s version %d, acknowledged as event %s, is not in the stream (its drain did not fill it)", id, s, e.Version, e.ID)
				}
			}
		}
	}
}

// TestTickDoesNotWaitForAHandover: a shard handed over with a commit in
// flight that does not end (held here for over three lease TTLs)
// must not hold up the ticks: they go on renewing the shard kept, and
// none claims back the shard being handed over. A tick that handed over
// before it returned waited for that commit (a drain waits for the batch
// in flight), the shards kept went unrenewed, and other instances could
// claim them.
func TestTickDoesNotWaitForAHandover(t *testing.T) {
	const ttl = 2 * time.Second
	o := handoverKeyspace(t, 2)
	var (
		held    atomic.Int64 // the shard whose commits wait for unhold
		entered = make(chan struct{}, 1)
		unhold  = make(chan struct{})
	)
	held.Store(-1)
	a := handoverSequencer(t, o, "a", cassandra.LatestSchemaVersion(), ttl, func(id int) {
		if int64(id) == held.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-unhold
		}
	})
	b := handoverSequencer(t, o, "b", cassandra.LatestSchemaVersion(), ttl, nil)
	unholdOnce := sync.OnceFunc(func() { close(unhold) })
	t.Cleanup(func() { handoverClose(a) })
	t.Cleanup(unholdOnce) // runs first: Close awaits the held commit

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.tickAndTake(ctx); err != nil {
		t.Fatalf("first tick: %v", err)
	}
	if n := len(a.Owned()); n != 2 {
		t.Fatalf("alone, A owns %d shards, want 2", n)
	}
	want := assign(map[string]bool{"a": true, "b": true}, 2)
	gone, kept := 0, 1
	if want[0] == "a" {
		gone, kept = 1, 0
	}
	var stream log.StreamID
	for i := 0; stream == ""; i++ {
		if s := fmt.Sprintf("held-%d", i); partition.ShardOf(s, 2) == gone {
			stream = log.StreamID(s)
		}
	}
	held.Store(int64(gone))
	go func() {
		req := log.AppendRequest{Stream: stream, Expected: log.Any, Events: []log.ProposedEvent{{Type: "Held", Data: []byte(`{}`)}}}
		if err := req.Validate(log.DefaultLimits()); err != nil {
			panic(err)
		}
		actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer acancel()
		_, _ = a.AppendLocal(actx, req) // its outcome is not what this test checks
	}()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the append to the held shard never reached its commit")
	}
	before, err := a.readOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.heartbeat(ctx); err != nil { // B is live: shard gone is its to own
		t.Fatal(err)
	}

	// Ticks over three and a half TTLs, as the ownership loop runs them, with
	// the handed-over shard's commit held throughout.
	var renewed time.Time
	for i := 0; i < 8; i++ {
		if i > 0 {
			time.Sleep(ttl / 2)
		}
		ticked := make(chan error, 1)
		go func() {
			tctx, tcancel := context.WithTimeout(context.Background(), ttl)
			defer tcancel()
			ticked <- a.tick(tctx)
		}()
		select {
		case err := <-ticked:
			if err != nil {
				t.Fatalf("tick %d: %v", i, err)
			}
		case <-time.After(ttl):
			t.Fatalf("tick %d still running after a lease TTL: it waits for the handover's commit in flight", i)
		}
		a.takes.Wait() // a shard claimed back would show now, not a tick late
		if err := b.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		rows, err := a.readOwners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		k := rows[kept]
		if k.Owner != "a" || k.Epoch != before[kept].Epoch || !k.LeaseUntil.After(renewed) {
			t.Fatalf("tick %d: shard kept is owned by %q at epoch %d until %v, want A at epoch %d renewed past %v",
				i, k.Owner, k.Epoch, k.LeaseUntil, before[kept].Epoch, renewed)
		}
		renewed = k.LeaseUntil
		if g := rows[gone]; g.Epoch != before[gone].Epoch {
			t.Fatalf("tick %d: the shard being handed over was claimed again (epoch %d, was %d)", i, g.Epoch, before[gone].Epoch)
		}
	}
	if got := a.Owned(); len(got) != 1 || got[0] != kept {
		t.Errorf("A owns %v, want [%d]", got, kept)
	}

	// Its commit decided, the handover ends with the release.
	unholdOnce()
	a.handovers.Wait()
	rows, err := a.readOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := rows[gone]; g.Owner != "" || g.Epoch != before[gone].Epoch {
		t.Errorf("after the handover, shard %d is owned by %q at epoch %d, want released at epoch %d", gone, g.Owner, g.Epoch, before[gone].Epoch)
	}
}

// handoverKeyspace migrates a fresh keyspace of shards shards, dropped
// when the test ends.
func handoverKeyspace(t *testing.T, shards int) cassandra.Options {
	t.Helper()
	return cassandratest.NewKeyspace(t, func(o *cassandra.Options) { o.Shards = shards })
}

// testConfig is the Config of a Sequencer named instance on a session of
// its own over o (closed after the test), as a server instance has: the
// keyspace's layout, o's buckets, idempotency window and logger.
func testConfig(t *testing.T, o cassandra.Options, instance string) Config {
	t.Helper()
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(session.Close)
	var (
		shards int
		rows   int64
	)
	if err := session.Query(`SELECT shards, segment_rows FROM keyspace_config WHERE id = 0`).Scan(&shards, &rows); err != nil {
		t.Fatalf("read layout: %v", err)
	}
	return Config{
		Session: session, Serial: cluster.SerialConsistency,
		Log: shardlog.New(session, cluster.SerialConsistency), Streams: streams.New(session, o.PageSize, o.IdempotencyWindow),
		Shards: shards, SegmentRows: rows, Instance: instance, Address: instance, SchemaVersion: cassandra.LatestSchemaVersion(),
		Policy: partition.Policy{Width: o.BucketWidth, MaxEvents: o.BucketMaxEvents}, IdempotencyWindow: o.IdempotencyWindow,
		Logger: o.Logger,
	}
}

// handoverSequencer returns a Sequencer on a session of its own, as a
// server instance has, not yet started.
func handoverSequencer(t *testing.T, o cassandra.Options, instance string, schema int, ttl time.Duration, beforeCommit func(int)) *Sequencer {
	t.Helper()
	cfg := testConfig(t, o, instance)
	cfg.SchemaVersion, cfg.LeaseTTL, cfg.BeforeCommit = schema, ttl, beforeCommit
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func handoverClose(s *Sequencer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.Close(ctx)
}

// handoverWait polls cond for up to 20 s.
func handoverWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
	}
}

// tickAndTake runs one ownership tick and waits for the takeovers it
// started, as Start does for its first.
func (s *Sequencer) tickAndTake(ctx context.Context) error {
	err := s.tick(ctx)
	s.takes.Wait()
	return err
}
