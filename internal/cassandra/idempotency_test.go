package cassandra_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

func TestIdempotentRetry(t *testing.T) {
	s, o := cassandratest.NewStore(t, nil)
	ctx := ctxT(t)

	for _, mode := range []struct {
		name string
		exp  log.ExpectedVersion
	}{{"Exact", 0}, {"Any", log.Any}} {
		t.Run(mode.name, func(t *testing.T) {
			stream := log.StreamID("idem" + mode.name + "-1")
			evs := withIDs(events(3, "E"))
			first, err := s.Append(ctx, log.AppendRequest{Stream: stream, Expected: mode.exp, Events: evs})
			if err != nil || first.Duplicate {
				t.Fatalf("first append: %+v %v", first, err)
			}
			// Other appends land in between; the retry still resolves.
			mustAppend(t, s, string(stream), log.Any, events(2, "Other"))
			retry, err := s.Append(ctx, log.AppendRequest{Stream: stream, Expected: mode.exp, Events: evs})
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !retry.Duplicate || retry.FirstVersion != first.FirstVersion || retry.LastVersion != first.LastVersion {
				t.Fatalf("retry result %+v, first %+v", retry, first)
			}
			// After a restart (a new instance without caches) too.
			again, err := cassandratest.Reopen(t, o).Append(ctx, log.AppendRequest{Stream: stream, Expected: mode.exp, Events: evs})
			if err != nil || !again.Duplicate || again.FirstVersion != first.FirstVersion {
				t.Fatalf("retry after restart: %+v %v", again, err)
			}
			checkGapless(t, readAll(t, s, log.ReadRange{Stream: stream}), 5)
		})
	}

	t.Run("PartialRepeatConflicts", func(t *testing.T) {
		evs := withIDs(events(2, "E"))
		mustAppend(t, s, "partial-1", log.Any, evs)
		// Reordered, or only some of the ids with a new one.
		for _, req := range [][]log.ProposedEvent{
			{evs[1], evs[0]},
			{evs[1]},
			append([]log.ProposedEvent{evs[0]}, withIDs(events(1, "New"))...),
			append(withIDs(events(1, "New")), evs[1]),
		} {
			_, err := s.Append(ctx, log.AppendRequest{Stream: "partial-1", Expected: log.Any, Events: req})
			if !errors.Is(err, log.ErrIdempotencyConflict) {
				t.Fatalf("partial repeat: %v", err)
			}
		}
		checkGapless(t, readAll(t, s, log.ReadRange{Stream: "partial-1"}), 2)
	})

	t.Run("SameIDOtherPayloadConflicts", func(t *testing.T) {
		evs := withIDs(events(1, "E"))
		mustAppend(t, s, "payload-1", log.Any, evs)
		changed := []log.ProposedEvent{{ID: evs[0].ID, Type: "E", Data: json.RawMessage(`{"n":"changed"}`)}}
		for _, exp := range []log.ExpectedVersion{log.Any, 0, 1} {
			_, err := s.Append(ctx, log.AppendRequest{Stream: "payload-1", Expected: exp, Events: changed})
			if !errors.Is(err, log.ErrIdempotencyConflict) {
				t.Fatalf("expected %v: same id, other payload: %v", exp, err)
			}
		}
		// Whitespace is not a different payload.
		spaced := []log.ProposedEvent{{ID: evs[0].ID, Type: "E", Data: json.RawMessage(`{ "n" : 0 }`)}}
		res, err := s.Append(ctx, log.AppendRequest{Stream: "payload-1", Expected: log.Any, Events: spaced})
		if err != nil || !res.Duplicate {
			t.Fatalf("respaced retry: %+v %v", res, err)
		}
	})

	t.Run("ExactBehindWithoutMatchIsConflict", func(t *testing.T) {
		mustAppend(t, s, "behind-1", log.Any, withIDs(events(2, "E")))
		var wev *log.WrongExpectedVersionError
		_, err := s.Append(ctx, log.AppendRequest{Stream: "behind-1", Expected: 0, Events: withIDs(events(1, "E"))})
		if !errors.As(err, &wev) || wev.Current != 2 {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("ConcurrentRetries", func(t *testing.T) {
		// The same append sent 8 times at once to two instances: exactly
		// one write, every caller gets the same versions.
		s2 := cassandratest.Reopen(t, o)
		mustAppend(t, s, "storm-1", log.Any, events(1, "Seed"))
		evs := withIDs(events(2, "E"))
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			firsts  = map[int64]int{}
			written int
		)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(st log.Store) {
				defer wg.Done()
				res, err := st.Append(ctx, log.AppendRequest{Stream: "storm-1", Expected: log.Any, Events: evs})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				firsts[res.FirstVersion]++
				if !res.Duplicate {
					written++
				}
			}([]log.Store{s, s2}[i%2])
		}
		wg.Wait()
		if len(firsts) != 1 || written != 1 {
			t.Fatalf("first versions %v, written %d times", firsts, written)
		}
		checkGapless(t, readAll(t, s, log.ReadRange{Stream: "storm-1"}), 3)
	})

	t.Run("GeneratedIDsAreNotDeduplicated", func(t *testing.T) {
		// Without client ids a resend is a new append (documented).
		mustAppend(t, s, "gen-1", log.Any, events(1, "E"))
		mustAppend(t, s, "gen-1", log.Any, events(1, "E"))
		got := readAll(t, s, log.ReadRange{Stream: "gen-1"})
		checkGapless(t, got, 2)
		if got[0].ID == got[1].ID || got[0].ID == uuid.Nil || got[0].ID.Version() != 7 {
			t.Fatalf("generated ids %s %s", got[0].ID, got[1].ID)
		}
	})
}

// TestIdempotencyWindowAcrossBuckets: an "any" retry is recognised while
// the original is in the stream's current or previous bucket; an exact
// retry always is.
func TestIdempotencyWindowAcrossBuckets(t *testing.T) {
	s, _ := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketMaxEvents = 5
		o.Limits.MaxEventsPerAppend = 5
	})
	ctx := ctxT(t)
	orig := withIDs(events(2, "E"))
	mustAppend(t, s, "win-1", log.NoStream, orig)      // bucket 0: 1..2
	mustAppend(t, s, "win-1", log.Any, events(4, "F")) // bucket 1: 3..6
	res, err := s.Append(ctx, log.AppendRequest{Stream: "win-1", Expected: log.Any, Events: orig})
	if err != nil || !res.Duplicate || res.FirstVersion != 1 {
		t.Fatalf("retry from the previous bucket: %+v %v", res, err)
	}
	mustAppend(t, s, "win-1", log.Any, events(5, "G")) // bucket 2: 7..11
	res, err = s.Append(ctx, log.AppendRequest{Stream: "win-1", Expected: log.NoStream, Events: orig})
	if err != nil || !res.Duplicate || res.FirstVersion != 1 {
		t.Fatalf("exact retry two buckets back: %+v %v", res, err)
	}
	// Outside the window an "any" resend is a new append (documented).
	res, err = s.Append(ctx, log.AppendRequest{Stream: "win-1", Expected: log.Any, Events: orig})
	if err != nil || res.Duplicate || res.FirstVersion != 12 {
		t.Fatalf("any retry two buckets back: %+v %v", res, err)
	}
}

// TestIdempotencyRecordsExpire: the ids recorded for "any" retries carry
// the idempotency window as their TTL.
func TestIdempotencyRecordsExpire(t *testing.T) {
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) { o.IdempotencyWindow = 2 * time.Hour })
	evs := withIDs(events(2, "E"))
	mustAppend(t, s, "ttl-1", log.Any, evs)
	var ttl int
	err := cassandratest.Session(t, o).Query(`SELECT TTL(position) FROM event_ids WHERE stream = 'ttl-1' AND bucket = 0 AND id = ?`, [16]byte(evs[1].ID)).Scan(&ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 2*3600-120 || ttl > 2*3600 {
		t.Fatalf("TTL of a recorded id is %d s, want about %d", ttl, 2*3600)
	}
}
