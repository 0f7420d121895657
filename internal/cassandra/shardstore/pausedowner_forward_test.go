package shardstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestForwardToPausedOwnerMovesOn: an append through an instance that does
// not own the stream's shard is forwarded to the owner. An owner paused
// past its lease (SIGSTOP) takes it and answers nothing, so the append
// waited for its whole deadline and was answered outcome_unknown, though
// another instance took the shard over meanwhile. Now the forward gives
// up on the paused owner once the shards table names a newer one and is
// sent again, as a retry: appended once when the paused owner had not
// committed it, the original versions when it had (every expected
// version; ids the server made, which the local commit of the new owner,
// here the forwarding instance, checks only as a retry's). Those are
// answered duplicate false: the client sent the append once, and an id
// the server made for it is in no earlier append, so what the retry
// found is its own first attempt (they were answered duplicate true).
// With every id the client's, the first attempt cannot be told from an
// earlier client retry: duplicate true.
func TestForwardToPausedOwnerMovesOn(t *testing.T) {
	o := newKeyspace(t, 2)
	var (
		paused    atomic.Bool
		peers     shardstoretest.Peers
		mu        sync.Mutex
		commit    = map[log.StreamID]bool{}             // the paused owner commits before it stops answering
		committed = map[log.StreamID]log.AppendResult{} // and what it committed
	)
	forward := func(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
		if addr != "a" || !paused.Load() {
			return peers.Forward(ctx, addr, req)
		}
		mu.Lock()
		c := commit[req.Stream]
		mu.Unlock()
		if c {
			// As the HTTP hop does: every forwarded id a client's.
			f := req
			f.Events = slices.Clone(req.Events)
			for i := range f.Events {
				f.Events[i].ClientID = true
			}
			f.KeepIDs()
			res, err := peers.Forward(ctx, addr, f)
			if err != nil {
				return res, err
			}
			mu.Lock()
			committed[req.Stream] = res
			mu.Unlock()
		}
		// Its process stopped: no answer until the sender gives up.
		<-ctx.Done()
		return log.AppendResult{}, fmt.Errorf("forward to a: %w: %v", log.ErrOutcomeUnknown, ctx.Err())
	}
	// The paused owner writes nothing to the streams (a fill delay past
	// the test): what it committed reaches them through the new owner's
	// catch-up, ids included, or not at all.
	a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, Address: "a", Forward: forward, FlushRemote: peers.FlushRemote, FillDelay: 10 * time.Minute})
	peers.Add("a", a)
	defer a.Close()
	b := open(t, shardstore.Options{Cassandra: o, Address: "b", Forward: forward, FlushRemote: peers.FlushRemote})
	peers.Add("b", b)
	defer b.Close()
	for deadline := time.Now().Add(30 * time.Second); len(a.Owned()) != 1 || len(b.Owned()) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a owns %v, b %v: want a shard each", a.Owned(), b.Owned())
		}
	}
	cases := []struct {
		name     string
		expected log.ExpectedVersion
		before   int    // events appended before the pause
		commit   bool   // by the paused owner
		ids      string // the client's: "", "all", or "first"
	}{
		{"any", log.Any, 2, false, ""},
		{"exact", 2, 2, false, ""},
		{"any-committed", log.Any, 2, true, ""},
		{"exact-committed", 2, 2, true, ""},
		{"no-stream-committed", log.NoStream, 0, true, ""},
		{"exists-committed", log.StreamExists, 2, true, ""},
		{"any-committed-client-ids", log.Any, 2, true, "all"},
		{"exact-committed-client-ids", 2, 2, true, "all"},
		{"any-committed-some-client-ids", log.Any, 2, true, "first"},
		{"any-client-ids", log.Any, 2, false, "all"},
	}
	ctx := context.Background()
	streams := make([]log.StreamID, len(cases))
	for i, n := 0, 0; i < len(cases); n++ {
		if s := fmt.Sprintf("paused-fwd-%d", n); slices.Contains(a.Owned(), partition.ShardOf(s, o.Shards)) {
			streams[i] = log.StreamID(s)
			commit[streams[i]] = cases[i].commit
			if cases[i].before > 0 {
				if _, err := appendN(ctx, a, s, log.NoStream, cases[i].before); err != nil {
					t.Fatal(err)
				}
			}
			i++
		}
	}
	paused.Store(true)
	results := make([]log.AppendResult, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Ids the server makes: only a retry's check looks at them.
			req := log.AppendRequest{Stream: streams[i], Expected: c.expected, Events: []log.ProposedEvent{
				{Type: "Tested", Data: json.RawMessage(`{"x":1}`)},
				{Type: "Tested", Data: json.RawMessage(`{"x":2}`)},
			}}
			for j := range req.Events {
				if c.ids == "all" || c.ids == "first" && j == 0 {
					req.Events[j].ID = uuid.Must(uuid.NewV7())
				}
			}
			if err := req.Validate(log.DefaultLimits()); err != nil {
				t.Error(err)
				return
			}
			// A generous deadline: without the fix the append waits all of it.
			actx, cancel := context.WithTimeout(ctx, 40*time.Second)
			defer cancel()
			results[i], errs[i] = b.Append(actx, req)
		}()
	}
	wg.Wait()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := results[i], errs[i]
			if err != nil {
				t.Fatalf("append through b while the owner is paused: %v", err)
			}
			first := int64(c.before + 1)
			dup := c.commit && c.ids == "all"
			if res.FirstVersion != first || res.LastVersion != first+1 || res.Duplicate != dup {
				t.Fatalf("got versions %d..%d, duplicate %v; want %d..%d, duplicate %v", res.FirstVersion, res.LastVersion, res.Duplicate, first, first+1, dup)
			}
			if c.commit {
				mu.Lock()
				orig, ok := committed[streams[i]]
				mu.Unlock()
				if !ok || orig.FirstVersion != res.FirstVersion || orig.Events[0].ID != res.Events[0].ID {
					t.Fatalf("paused owner committed %+v (%v), the answer is %+v", orig, ok, res)
				}
			}
			evs := readAll(t, b, string(streams[i]))
			checkGapless(t, string(streams[i]), evs, c.before+2)
			for j, e := range res.Events {
				if got := evs[e.Version-1]; got.ID != e.ID {
					t.Fatalf("event %d: version %d holds id %s, want %s", j, e.Version, got.ID, e.ID)
				}
			}
		})
	}
	if !slices.Contains(b.Owned(), partition.ShardOf(string(streams[0]), o.Shards)) {
		t.Fatalf("b owns %v: the appends were served before the takeover?", b.Owned())
	}
}
