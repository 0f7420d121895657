package cassandra_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// fastFeeds makes the maintainer quick enough for tests.
var fastFeeds = cassandratest.FastFeeds

func off() *bool { b := false; return &b }

// readFeedUntil reads feed r from its position until the watermark has
// passed every time in want's events, or the deadline; it returns the
// events read, in order.
func readFeedUntil(t *testing.T, s log.FeedStore, r log.FeedRead, until time.Time, deadline time.Duration) ([]log.FeedEvent, string) {
	t.Helper()
	ctx := ctxT(t)
	end := time.Now().Add(deadline)
	var out []log.FeedEvent
	for {
		page, err := s.ReadFeed(ctx, r)
		if err != nil {
			t.Fatalf("read feed %s: %v", r.Feed, err)
		}
		out = append(out, page.Events...)
		if mustPosition(t, page.Next).Less(mustPosition(t, r.After)) {
			t.Fatalf("feed position went back: %v after %v", page.Next, r.After)
		}
		r.After = page.Next
		if len(page.Events) == 0 && !page.CompleteUpTo.Before(until) {
			return out, r.After
		}
		if time.Now().After(end) {
			t.Fatalf("feed %s not complete up to %v after %v (watermark %v, %d events read)", r.Feed, until, deadline, page.CompleteUpTo, len(out))
		}
		if len(page.Events) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// mustPosition decodes a position token of this store.
func mustPosition(t *testing.T, token string) log.Position {
	t.Helper()
	p, err := log.ParsePosition(token)
	if err != nil {
		t.Fatalf("position token %q: %v", token, err)
	}
	return p
}

type evKey struct {
	stream  log.StreamID
	version int64
}

// checkFeed asserts that got holds exactly the events of want (by stream
// and version, with their ids and types), each once, in position order.
func checkFeed(t *testing.T, name string, got []log.FeedEvent, want map[evKey]log.AppendedEvent) {
	t.Helper()
	seen := map[evKey]bool{}
	for i, e := range got {
		k := evKey{e.Stream, e.Version}
		if seen[k] {
			t.Fatalf("%s: %s@%d twice", name, e.Stream, e.Version)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Fatalf("%s: unexpected event %s@%d", name, e.Stream, e.Version)
		}
		if w.ID != e.ID {
			t.Fatalf("%s: %s@%d has id %s, want %s", name, e.Stream, e.Version, e.ID, w.ID)
		}
		if i > 0 && !mustPosition(t, got[i-1].Position).Less(mustPosition(t, e.Position)) {
			t.Fatalf("%s: out of order: %+v then %+v", name, got[i-1].Position, e.Position)
		}
		if mustPosition(t, e.Position) != log.PositionOf(&e.RecordedEvent) {
			t.Fatalf("%s: position %+v does not match the event", name, e.Position)
		}
	}
	if len(seen) != len(want) {
		for k := range want {
			if !seen[k] {
				t.Errorf("%s: missing %s@%d", name, k.stream, k.version)
			}
		}
		t.Fatalf("%s: %d of %d events", name, len(seen), len(want))
	}
}

// TestFeedsExactlyOnce: every acknowledged event of concurrent appends
// from two instances appears once in all, its category and its type feed,
// in position order with each stream's order kept — and a reader that
// follows the feed while the appends run, page by page from its tokens,
// ends with the same complete set: nothing skipped, nothing twice.
func TestFeedsExactlyOnce(t *testing.T) {
	s1, o := cassandratest.NewStore(t, fastFeeds)
	s2 := cassandratest.Reopen(t, o)
	ctx := ctxT(t)

	// A follower reads the all feed from the start while appends run.
	var (
		followed []log.FeedEvent
		stop     atomic.Bool
		fwg      sync.WaitGroup
		pos      string
	)
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		for !stop.Load() {
			page, err := s2.ReadFeed(ctx, log.FeedRead{Feed: log.AllFeed, After: pos, Limit: 7})
			if err != nil {
				t.Errorf("follow: %v", err)
				return
			}
			followed = append(followed, page.Events...)
			pos = page.Next
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var (
		mu    sync.Mutex
		acked = map[evKey]log.AppendedEvent{}
		types = map[evKey]string{}
		last  time.Time
		wg    sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []log.Store{s1, s2}[w%2]
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 25 {
				stream := log.StreamID(fmt.Sprintf("%s-%d", []string{"order", "user"}[r.IntN(2)], r.IntN(6)))
				typ := []string{"Created", "Updated"}[r.IntN(2)]
				n := 1 + r.IntN(3)
				res, err := s.Append(ctx, log.AppendRequest{Stream: stream, Expected: log.Any, Events: events(n, typ)})
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				mu.Lock()
				for _, e := range res.Events {
					k := evKey{stream, e.Version}
					acked[k], types[k] = e, typ
					if res.Time.After(last) {
						last = res.Time
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	all, _ := readFeedUntil(t, s1, log.FeedRead{Feed: log.AllFeed}, last, 30*time.Second)
	checkFeed(t, "all", all, acked)
	for _, cat := range []string{"order", "user"} {
		want := map[evKey]log.AppendedEvent{}
		for k, e := range acked {
			if k.stream.Category() == cat {
				want[k] = e
			}
		}
		got, _ := readFeedUntil(t, s1, log.FeedRead{Feed: log.CategoryFeed(cat)}, last, 10*time.Second)
		checkFeed(t, "category/"+cat, got, want)
	}
	for _, typ := range []string{"Created", "Updated"} {
		want := map[evKey]log.AppendedEvent{}
		for k, e := range acked {
			if types[k] == typ {
				want[k] = e
			}
		}
		got, _ := readFeedUntil(t, s2, log.FeedRead{Feed: log.TypeFeed(typ)}, last, 10*time.Second)
		checkFeed(t, "type/"+typ, got, want)
	}

	// The follower catches up from its own token to the same set.
	stop.Store(true)
	fwg.Wait()
	rest, _ := readFeedUntil(t, s2, log.FeedRead{Feed: log.AllFeed, After: pos}, last, 10*time.Second)
	checkFeed(t, "followed all", append(followed, rest...), acked)

	// Shard filters partition the feed.
	var union []log.FeedEvent
	for sh := range log.FeedShards {
		got, _ := readFeedUntil(t, s1, log.FeedRead{Feed: log.AllFeed, Shards: []int{sh}}, last, 10*time.Second)
		for _, e := range got {
			if log.ShardOf(e.Stream) != sh {
				t.Fatalf("shard %d read returned %s (shard %d)", sh, e.Stream, log.ShardOf(e.Stream))
			}
		}
		union = append(union, got...)
	}
	if len(union) != len(acked) {
		t.Fatalf("shard reads hold %d events, want %d", len(union), len(acked))
	}
}

// TestFeedRepairAfterCrash: an instance that acknowledges appends and then
// dies before writing their feed rows (its feed writer blocks forever and
// it runs no maintainer) loses nothing: another instance's maintainer
// resolves the open intents and the events reach every feed within
// FeedRepairAfter plus a few ticks.
func TestFeedRepairAfterCrash(t *testing.T) {
	block := make(chan struct{})
	crashed, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		fastFeeds(o)
		o.FeedMaintainer = off()
		o.BeforeFeedWrite = func() { <-block }
	})
	t.Cleanup(func() { close(block) }) // before the store's Close, which waits for its writers
	o.FeedMaintainer, o.BeforeFeedWrite = nil, nil
	ctx := ctxT(t)
	acked := map[evKey]log.AppendedEvent{}
	var last time.Time
	for i := range 3 {
		res, err := crashed.Append(ctx, log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("crash-%d", i)), Expected: log.NoStream, Events: events(2, "Lost")})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Events {
			acked[evKey{res.Stream, e.Version}] = e
			last = res.Time
		}
	}
	start := time.Now()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	healthy := cassandratest.Reopen(t, o)
	got, _ := readFeedUntil(t, healthy, log.FeedRead{Feed: log.AllFeed}, last, 30*time.Second)
	checkFeed(t, "all after repair", got, acked)
	// The repair is visible to operators.
	if n := gathered(t, reg, "eventlog_feed_repairs_total", "committed"); n != 3 {
		t.Errorf("eventlog_feed_repairs_total{outcome=committed} = %v, want 3 (one per crashed append)", n)
	}
	if lag := gathered(t, reg, "eventlog_feed_watermark_lag_seconds", ""); lag <= 0 || lag > 5 {
		t.Errorf("eventlog_feed_watermark_lag_seconds = %v after the repair, want a fraction of a second", lag)
	}
	got, _ = readFeedUntil(t, healthy, log.FeedRead{Feed: log.TypeFeed("Lost")}, last, time.Second)
	checkFeed(t, "type after repair", got, acked)
	t.Logf("repaired in %v (repair delay %v)", time.Since(start).Round(time.Millisecond), o.FeedRepairAfter)

	// The streams were not fenced: they committed, so they take appends.
	mustAppend(t, healthy, "crash-0", 2, events(1, "After"))
}

// TestFeedFencesUnknownOutcome: an append whose answer (or request) was
// lost is settled by the maintainer: fenced if it never committed — and a
// late commit is then impossible — or its feed rows written if it did.
// Either way the stream and the feeds agree, exactly once.
func TestFeedFencesUnknownOutcome(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(map[bool]string{true: "ResponseLost", false: "RequestLost"}[applied], func(t *testing.T) {
			d := &cassandratest.FaultyDialer{}
			var armed atomic.Bool
			s1, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
				fastFeeds(o)
				o.FeedMaintainer = off()
				o.Dialer = d
				o.Timeout = 2 * time.Second
				o.BeforeWrite = func() {
					if !armed.Load() {
						return
					}
					if applied {
						d.DropResponses.Store(true)
					} else {
						d.DropRequests.Store(true)
					}
				}
			})
			t.Cleanup(d.CloseAll)
			ctx := ctxT(t)
			mustAppend(t, s1, "fence-1", log.NoStream, withIDs(events(1, "Before")))
			mustAppend(t, s1, "fence-1", 1, withIDs(events(1, "Before")))
			armed.Store(true)
			evs := withIDs(events(2, "Maybe"))
			if _, err := s1.Append(ctx, log.AppendRequest{Stream: "fence-1", Expected: 2, Events: evs}); !errors.Is(err, log.ErrOutcomeUnknown) {
				t.Fatalf("lost write: %v", err)
			}
			o.Dialer, o.BeforeWrite, o.FeedMaintainer = nil, nil, nil
			s2 := cassandratest.Reopen(t, o)
			got, _ := readFeedUntil(t, s2, log.FeedRead{Feed: log.CategoryFeed("fence")}, time.Now(), 30*time.Second)
			stored := readAll(t, s2, log.ReadRange{Stream: "fence-1"})
			if len(got) != len(stored) {
				t.Fatalf("feed holds %d events, stream %d", len(got), len(stored))
			}
			for i := range got {
				if got[i].ID != stored[i].ID || got[i].Version != stored[i].Version {
					t.Fatalf("feed event %d = %s@%d, stream has %s@%d", i, got[i].ID, got[i].Version, stored[i].ID, stored[i].Version)
				}
			}
			if want := map[bool]int{true: 4, false: 2}[applied]; len(stored) != want {
				t.Fatalf("stream holds %d events, want %d", len(stored), want)
			}
			if !applied {
				// The lost batch, delivered late (a coordinator still
				// retrying its Paxos round), finds the bucket fenced.
				sess := cassandratest.Session(t, o)
				late, err := sess.Query(cassandra.Statements.AppendHead, int64(4), time.Now(), "fence-1", int64(0), int64(2), nil).
					MapScanCAS(map[string]any{})
				if err != nil || late {
					t.Fatalf("late commit after the repair: applied=%v err=%v", late, err)
				}
			}
			// The retry settles the client's view exactly once.
			res, err := s2.Append(ctx, log.AppendRequest{Stream: "fence-1", Expected: 2, Events: evs})
			if err != nil || res.Duplicate != applied || res.LastVersion != 4 {
				t.Fatalf("retry: %+v %v", res, err)
			}
			checkGapless(t, readAll(t, s2, log.ReadRange{Stream: "fence-1"}), 4)
		})
	}
}

// TestFeedClockSkew: an instance whose clock is 3 s behind cannot slip an
// event in below the watermark another instance published: its commit
// time moves forward, the stream's times stay monotonic, and a follower
// of the feed still gets every event.
func TestFeedClockSkew(t *testing.T) {
	s1, o := cassandratest.NewStore(t, fastFeeds)
	o.Now = func() time.Time { return time.Now().Add(-3 * time.Second) }
	o.FeedMaintainer = off()
	slow := cassandratest.Reopen(t, o)
	ctx := ctxT(t)
	// Let the watermark pass the slow clock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		wm, err := s1.FeedWatermark(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if wm.After(time.Now().Add(-2 * time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermark stuck at %v", wm)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wmBefore, _ := s1.FeedWatermark(ctx)
	acked := map[evKey]log.AppendedEvent{}
	var last time.Time
	for i := range 5 {
		res := mustAppend(t, []log.Store{slow, s1}[i%2], "skew-1", log.ExpectedVersion(i), events(1, "Tick"))
		e := res.Events[0]
		if !res.Time.After(wmBefore) {
			t.Fatalf("event %d committed at %v, at or below the published watermark %v", i+1, res.Time, wmBefore)
		}
		if res.Time.Before(last) {
			t.Fatalf("event time went back: %v after %v", res.Time, last)
		}
		acked[evKey{"skew-1", e.Version}], last = e, res.Time
	}
	got, _ := readFeedUntil(t, s1, log.FeedRead{Feed: log.CategoryFeed("skew")}, last, 10*time.Second)
	checkFeed(t, "skew", got, acked)
}

// TestFeedTokens: tokens round-trip, and garbage is a validation error.
func TestFeedTokens(t *testing.T) {
	p := log.Position{Time: time.UnixMilli(1_700_000_000_123).UTC(), Stream: "user-1", Version: 42}
	for _, q := range []log.Position{{}, p, log.After(p.Time)} {
		got, err := log.ParsePosition(q.Token())
		if err != nil || got != q {
			t.Fatalf("round trip %+v: %+v %v", q, got, err)
		}
	}
	for _, bad := range []string{"x", "AAAA", uuid.NewString()} {
		var ve *log.ValidationError
		if _, err := log.ParsePosition(bad); !errors.As(err, &ve) || ve.Code != log.CodeInvalidPosition {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
}

// checkFeedHolds reads the all feed from the start until its watermark
// passes the newest of stored and checks it holds exactly those events
// (the keyspace's only ones), each once, in order.
func checkFeedHolds(t *testing.T, s log.FeedStore, stored []log.RecordedEvent, within time.Duration) {
	t.Helper()
	want := map[evKey]log.AppendedEvent{}
	var last time.Time
	for _, e := range stored {
		want[evKey{e.Stream, e.Version}] = log.AppendedEvent{ID: e.ID, Version: e.Version}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	got, _ := readFeedUntil(t, s, log.FeedRead{Feed: log.AllFeed}, last, within)
	checkFeed(t, "all feed after faults", got, want)
}

// gathered returns the value of metric name (with the label value, if
// set) from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
