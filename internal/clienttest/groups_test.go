package clienttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// groupTTL is the lease TTL of the group tests: short, so a dead member's
// partitions move quickly.
const groupTTL = time.Second

// MustGroupServer is MustServer with quick feeds and short group leases;
// it also returns the store, to append without HTTP.
func MustGroupServer(tb testing.TB) (string, *shardstore.Store) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, _ := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Registerer = reg
		o.GroupLeaseTTL, o.GroupLeaseGrace = groupTTL, 100*time.Millisecond
		o.Shards = 16 // a group's partitions: the splits below are of 16
	})
	api, err := httpapi.New(store, httpapi.Config{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	return ts.URL, store
}

// appender appends to streams of one category and remembers each
// stream's head.
type appender struct {
	store *shardstore.Store
	cat   string
	mu    sync.Mutex
	heads map[string]int64
}

func newAppender(s *shardstore.Store, cat string) *appender {
	return &appender{store: s, cat: cat, heads: map[string]int64{}}
}

// round appends one event to each of n streams.
func (a *appender) round(tb testing.TB, n int) {
	tb.Helper()
	for i := range n {
		stream := fmt.Sprintf("%s-%d", a.cat, i)
		res, err := a.store.Append(context.Background(), log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any,
			Events: []log.ProposedEvent{{Type: "Tick", Data: json.RawMessage(`{}`)}}})
		if err != nil {
			tb.Errorf("append to %s: %v", stream, err)
			return
		}
		a.mu.Lock()
		a.heads[stream] = res.LastVersion
		a.mu.Unlock()
	}
}

func (a *appender) total() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, h := range a.heads {
		n += h
	}
	return n
}

// tracker records every handle call of every member and checks, as they
// happen, that no stream is handled by two calls at once and that no
// stream's version is handled before the one preceding it.
type tracker struct {
	mu       sync.Mutex
	active   map[string]string // stream → member handling it now
	handled  map[string]map[int64]int
	max      map[string]int64
	byMember map[string]int
	lastAt   map[string]time.Time // member → start of its latest call
	dups     int
	errs     []string
}

func newTracker() *tracker {
	return &tracker{active: map[string]string{}, handled: map[string]map[int64]int{}, max: map[string]int64{},
		byMember: map[string]int{}, lastAt: map[string]time.Time{}}
}

func (tr *tracker) handler(member string, delay time.Duration) func(context.Context, client.FeedEvent) error {
	return func(_ context.Context, ev client.FeedEvent) error {
		tr.mu.Lock()
		if other, ok := tr.active[ev.Stream]; ok {
			tr.errs = append(tr.errs, fmt.Sprintf("%s@%d handled by %s while %s handles the stream", ev.Stream, ev.Version, member, other))
		}
		tr.active[ev.Stream] = member
		tr.lastAt[member] = time.Now()
		if ev.Version > tr.max[ev.Stream]+1 {
			tr.errs = append(tr.errs, fmt.Sprintf("%s@%d handled by %s before version %d", ev.Stream, ev.Version, member, tr.max[ev.Stream]+1))
		}
		tr.mu.Unlock()
		time.Sleep(delay)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		delete(tr.active, ev.Stream)
		if tr.handled[ev.Stream] == nil {
			tr.handled[ev.Stream] = map[int64]int{}
		}
		if tr.handled[ev.Stream][ev.Version]++; tr.handled[ev.Stream][ev.Version] > 1 {
			tr.dups++
		}
		tr.max[ev.Stream] = max(tr.max[ev.Stream], ev.Version)
		tr.byMember[member]++
		return nil
	}
}

// distinct counts the distinct events handled.
func (tr *tracker) distinct() int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var n int64
	for _, vs := range tr.handled {
		n += int64(len(vs))
	}
	return n
}

func (tr *tracker) count(member string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.byMember[member]
}

// check fails on any violation seen, and unless every appended event was
// handled.
func (tr *tracker) check(t *testing.T, a *appender) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range tr.errs {
		t.Error(e)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for stream, head := range a.heads {
		for v := int64(1); v <= head; v++ {
			if tr.handled[stream][v] == 0 {
				t.Errorf("%s@%d never handled", stream, v)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitFor polls cond every 20ms until it holds, or fails after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// member runs Consume in the background until stopped.
type member struct {
	cancel context.CancelFunc
	done   chan error
}

func startMember(c *client.Client, group string, opts client.ConsumeOptions, handle func(context.Context, client.FeedEvent) error) *member {
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- c.Consume(ctx, group, opts, handle) }()
	return m
}

// stop ends the member and checks Consume returned ctx's error.
func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Consume returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Consume did not return after its context ended")
	}
}

// owners returns the owner of each partition (none before the group
// exists).
func owners(t *testing.T, c *client.Client, group string) map[int]string {
	t.Helper()
	info, err := c.GroupInfo(ctx(t), group)
	if errors.Is(err, client.ErrGroupNotFound) {
		return nil // no member has joined yet
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, p := range info.Partitions {
		out[p.Partition] = p.Owner
	}
	return out
}

// TestConsumeResume: a member that stops (its context ends) has
// acknowledged everything it handled; the next member, with another id or
// the same one, resumes exactly there: no event twice, none skipped. The
// lag is the events not yet handled, and 0 once they are.
func TestConsumeResume(t *testing.T) {
	url, store := MustGroupServer(t)
	c := MustClient(t, url)
	a := newAppender(store, "res")
	for range 5 {
		a.round(t, 8)
	}
	tr := newTracker()
	feed := client.CategoryFeed("res")

	m1 := startMember(c, "g", client.ConsumeOptions{Feed: feed, Member: "m1", Batch: 7}, tr.handler("m1", 0))
	waitFor(t, 20*time.Second, "m1 handles the first 40 events", func() bool { return tr.distinct() == 40 })
	m1.stop(t)
	info, err := c.GroupInfo(ctx(t), "g")
	if err != nil || info.Lag != 0 || info.Feed != feed || len(info.Members) != 0 {
		t.Fatalf("after m1 left: %+v %v", info, err)
	}
	for _, p := range info.Partitions {
		if p.Owner != "" {
			t.Fatalf("partition %d still owned by %s after m1 left", p.Partition, p.Owner)
		}
	}

	for i, id := range []string{"m2", "m1"} {
		for range 3 {
			a.round(t, 8)
		}
		want := a.total()
		waitFor(t, 10*time.Second, "the new events reach the watermark and the lag", func() bool {
			info, err := c.GroupInfo(ctx(t), "g")
			return err == nil && info.Lag == 24
		})
		m := startMember(c, "g", client.ConsumeOptions{Feed: feed, Member: id}, tr.handler(id, 0))
		waitFor(t, 20*time.Second, fmt.Sprintf("restart %d as %s handles the rest", i, id), func() bool { return tr.distinct() == want })
		time.Sleep(300 * time.Millisecond) // a redelivery would show up now
		m.stop(t)
	}
	tr.check(t, a)
	if tr.dups != 0 {
		t.Fatalf("%d events handled twice across clean restarts", tr.dups)
	}
	if info, _ := c.GroupInfo(ctx(t), "g"); info.Lag != 0 {
		t.Fatalf("lag %d after everything was handled", info.Lag)
	}
}

// TestConsumeSplit: three members share a feed that is being appended
// to; one joins late and one leaves half way. Every stream is handled by
// one member at a time, in version order, and every event is handled.
func TestConsumeSplit(t *testing.T) {
	url, store := MustGroupServer(t)
	c := MustClient(t, url)
	a := newAppender(store, "spl")
	tr := newTracker()
	feed := client.CategoryFeed("spl")
	var stopAppends atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopAppends.Load() {
			a.round(t, 24)
		}
	}()
	opts := func(id string) client.ConsumeOptions { return client.ConsumeOptions{Feed: feed, Member: id, Batch: 10} }
	m1 := startMember(c, "g", opts("m1"), tr.handler("m1", 2*time.Millisecond))
	m2 := startMember(c, "g", opts("m2"), tr.handler("m2", 2*time.Millisecond))
	waitFor(t, 20*time.Second, "m1 and m2 both handle events", func() bool { return tr.count("m1") > 20 && tr.count("m2") > 20 })
	m3 := startMember(c, "g", opts("m3"), tr.handler("m3", 2*time.Millisecond))
	waitFor(t, 20*time.Second, "m3 takes its share", func() bool { return tr.count("m3") > 20 })
	waitFor(t, 20*time.Second, "a balanced split among three (6, 5, 5)", func() bool {
		per := map[string]int{}
		for _, o := range owners(t, c, "g") {
			per[o]++
		}
		return per["m1"]+per["m2"]+per["m3"] == 16 && min(per["m1"], per["m2"], per["m3"]) == 5
	})
	m1.stop(t)
	before := tr.count("m2") + tr.count("m3")
	waitFor(t, 20*time.Second, "m2 and m3 go on without m1", func() bool { return tr.count("m2")+tr.count("m3") > before+100 })
	stopAppends.Store(true)
	wg.Wait()
	want := a.total()
	waitFor(t, 30*time.Second, "every event handled", func() bool { return tr.distinct() == want })
	m2.stop(t)
	m3.stop(t)
	tr.check(t, a)
	t.Logf("%d events; handled by m1 %d, m2 %d, m3 %d; %d redelivered", want, tr.count("m1"), tr.count("m2"), tr.count("m3"), tr.dups)
}

// TestConsumeMemberDies: a member whose connection dies in the middle of a
// batch stops handling once its lease runs out by its own clock; the other
// member takes its partitions only after the lease, so no stream is ever
// handled twice at once. The dead member's acknowledgement under its old
// epoch is refused. When it comes back it gets its share again, and no
// event is lost.
func TestConsumeMemberDies(t *testing.T) {
	url, store := MustGroupServer(t)
	direct := MustClient(t, url)
	px := MustProxy(t, url)
	viaProxy := MustClient(t, px.URL)
	a := newAppender(store, "die")
	tr := newTracker()
	feed := client.CategoryFeed("die")
	for range 20 {
		a.round(t, 16)
	}
	ma := startMember(direct, "g", client.ConsumeOptions{Feed: feed, Member: "a", Batch: 20}, tr.handler("a", 5*time.Millisecond))
	// d's batches take longer than a lease (100 × 20ms > 1s): only its own
	// clock stops it in time.
	md := startMember(viaProxy, "g", client.ConsumeOptions{Feed: feed, Member: "d", Batch: 100}, tr.handler("d", 20*time.Millisecond))
	waitFor(t, 20*time.Second, "d holds its share and handles events", func() bool {
		n := 0
		for _, o := range owners(t, direct, "g") {
			if o == "d" {
				n++
			}
		}
		return n == 8 && tr.count("d") > 10
	})
	info, err := direct.GroupInfo(ctx(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	var dPart client.GroupPartitionInfo
	for _, p := range info.Partitions {
		if p.Owner == "d" {
			dPart = p
		}
	}

	px.SetFault(func(*proxy, int, http.ResponseWriter, *http.Request) bool { Drop(); return true })
	cut := time.Now()
	waitFor(t, 20*time.Second, "a takes every partition", func() bool {
		for _, o := range owners(t, direct, "g") {
			if o != "a" {
				return false
			}
		}
		return true
	})
	if d := time.Since(cut); d < groupTTL/2 {
		t.Fatalf("d's partitions moved %v after the cut, before its lease could end", d)
	}
	tr.mu.Lock()
	lastD := tr.lastAt["d"]
	tr.mu.Unlock()
	if lastD.After(cut.Add(groupTTL)) {
		t.Fatalf("d handled an event %v after the cut, past its lease", lastD.Sub(cut))
	}
	// d comes back. Its late acknowledgement under its old epoch (from its
	// own client, which holds its member secret) is refused.
	px.SetFault(nil)
	_, err = viaProxy.AckGroup(ctx(t), "g", "d", client.Ack{Partition: dPart.Partition, Epoch: dPart.Epoch})
	var p *client.Problem
	if !errors.Is(err, client.ErrLeaseLost) || !errors.As(err, &p) || len(p.Partitions) != 1 || p.Partitions[0] != dPart.Partition {
		t.Fatalf("late ack: %v", err)
	}

	// d gets its share again; appends go on meanwhile.
	a.round(t, 16)
	waitFor(t, 20*time.Second, "d holds its share again", func() bool {
		n := 0
		for _, o := range owners(t, direct, "g") {
			if o == "d" {
				n++
			}
		}
		return n == 8
	})
	a.round(t, 16)
	want := a.total()
	waitFor(t, 30*time.Second, "every event handled", func() bool { return tr.distinct() == want })
	ma.stop(t)
	md.stop(t)
	tr.check(t, a)
	t.Logf("%d events; a %d, d %d; %d redelivered after d's connection died", want, tr.count("a"), tr.count("d"), tr.dups)
}

// TestConsumeRetriesHandlerErrors: a failing handler is retried with
// back-off on the same event, never skipped, and the stream's later
// events wait for it.
func TestConsumeRetriesHandlerErrors(t *testing.T) {
	url, store := MustGroupServer(t)
	c := MustClient(t, url)
	a := newAppender(store, "ret")
	for range 4 {
		a.round(t, 3)
	}
	var (
		mu       sync.Mutex
		order    = map[string][]int64{}
		failures int
	)
	ctx, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, "g", client.ConsumeOptions{Feed: client.CategoryFeed("ret")}, func(_ context.Context, ev client.FeedEvent) error {
			mu.Lock()
			defer mu.Unlock()
			if ev.Stream == "ret-1" && ev.Version == 2 && failures < 3 {
				failures++
				return errors.New("not yet")
			}
			order[ev.Stream] = append(order[ev.Stream], ev.Version)
			return nil
		})
	}()
	waitFor(t, 20*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, vs := range order {
			n += len(vs)
		}
		return n == 12
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failures != 3 {
		t.Fatalf("%d failures, want 3", failures)
	}
	for stream, vs := range order {
		if !sort.SliceIsSorted(vs, func(i, j int) bool { return vs[i] < vs[j] }) || len(vs) != 4 {
			t.Fatalf("%s handled as %v", stream, vs)
		}
	}
}

// TestConsumeRefusals: what retrying cannot cure ends Consume at once.
func TestConsumeRefusals(t *testing.T) {
	url, _ := MustGroupServer(t)
	c := MustClient(t, url)
	noop := func(context.Context, client.FeedEvent) error { return nil }
	if _, err := c.JoinGroup(ctx(t), "g", client.JoinOptions{Feed: client.AllFeed, Member: "x"}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		group string
		opts  client.ConsumeOptions
		want  error
	}{
		"FeedMismatch": {"g", client.ConsumeOptions{Feed: client.TypeFeed("T")}, client.ErrGroupFeedMismatch},
		"BadGroup":     {"a b", client.ConsumeOptions{Feed: client.AllFeed}, &client.Problem{Code: client.CodeInvalidGroup}},
		"BadFeed":      {"g2", client.ConsumeOptions{Feed: "stream/x"}, &client.Problem{Code: client.CodeInvalidFeed}},
		"BadMember":    {"g", client.ConsumeOptions{Feed: client.AllFeed, Member: "a/b"}, &client.Problem{Code: client.CodeInvalidMember}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.Consume(ctx(t), tc.group, tc.opts, noop); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := c.Consume(ctx(t), "g", client.ConsumeOptions{}, noop); err == nil {
		t.Fatal("Consume without a feed")
	}
	if _, err := c.GroupInfo(ctx(t), "nope"); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("group info: %v", err)
	}
}

// TestConsumeFirstJoinAnswerLost: the answer to the join that creates a
// member (and its secret) is lost on the way back; the client's own retry
// of that join, without the secret, is 403 invalid_member_secret, which
// ended Consume at once with an error on a transient network failure.
// A member id Consume generated is its own to replace: it joins again
// under a new one (the orphan expires with its lease) and handles every
// event.
func TestConsumeFirstJoinAnswerLost(t *testing.T) {
	url, store := MustGroupServer(t)
	px := MustProxy(t, url)
	px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/members") {
			p.Forward(r) // the member is created; its answer never arrives
			Drop()
		}
		return false
	})
	a := newAppender(store, "lost")
	a.round(t, 4)
	tr := newTracker()
	m := startMember(MustClient(t, px.URL), "g", client.ConsumeOptions{Feed: client.CategoryFeed("lost")}, tr.handler("m", 0))
	deadline := time.Now().Add(20 * time.Second)
	for tr.distinct() < a.total() {
		select {
		case err := <-m.done:
			t.Fatalf("Consume ended after the first join's answer was lost: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled", tr.distinct(), a.total())
		}
	}
	m.stop(t)
	tr.check(t, a)
}

// TestConsumeHeartbeatAnswerLost: a member Consume generated expires
// through an outage (here its row is removed, as expiry does); its next
// heartbeat creates it anew with a new secret, and that answer is lost.
// The retry, with the old secret, is 403 invalid_member_secret, which
// ended Consume. It now goes on under a new member id.
func TestConsumeHeartbeatAnswerLost(t *testing.T) {
	url, store := MustGroupServer(t)
	px := MustProxy(t, url)
	var (
		armed atomic.Bool
		old   atomic.Value // the member id whose reads the outage fails
	)
	old.Store("")
	px.SetFault(func(p *proxy, n int, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/members") && armed.CompareAndSwap(true, false):
			p.Forward(r) // the member is created anew; its answer never arrives
			Drop()
		case old.Load() != "" && strings.Contains(r.URL.Path, "/members/"+old.Load().(string)+"/"):
			Problem(w, http.StatusServiceUnavailable, client.CodeUnavailable) // the outage
			return true
		}
		return false
	})
	a := newAppender(store, "hb")
	a.round(t, 4)
	tr := newTracker()
	m := startMember(MustClient(t, px.URL), "g", client.ConsumeOptions{Feed: client.CategoryFeed("hb")}, tr.handler("m", 0))
	handles := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for tr.distinct() < a.total() {
			select {
			case err := <-m.done:
				t.Fatalf("%s: Consume ended: %v", what, err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d events handled", what, tr.distinct(), a.total())
			}
		}
	}
	handles("before the outage")
	c := MustClient(t, url)
	info, err := c.GroupInfo(ctx(t), "g")
	if err != nil || len(info.Members) != 1 {
		t.Fatalf("group info %+v %v, want one member", info, err)
	}
	old.Store(info.Members[0].Member)
	armed.Store(true)
	if err := c.EvictMember(ctx(t), "g", info.Members[0].Member); err != nil {
		t.Fatal(err)
	}
	a.round(t, 4)
	handles("after the heartbeat's answer was lost")
	if armed.Load() {
		t.Fatal("no heartbeat after the member's row was gone")
	}
	m.stop(t)
	tr.check(t, a)
}
