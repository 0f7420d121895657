package cassandra_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// TestGroupCommit: 64 concurrent appenders on one stream of one instance,
// mixing "any", exact expected versions and identical retries sent at the
// same time. Appends are coalesced into fewer conditional batches, and
// every invariant still holds: each acknowledged append is present exactly
// once, contiguous, at its acknowledged versions; identical retries get
// the same versions; conflicts are honest.
func TestGroupCommit(t *testing.T) {
	s, o := cassandratest.NewStore(t, nil)
	other := cassandratest.Reopen(t, o) // a second instance contends too
	var batches, batched atomic.Int64
	cassandra.SetAfterBatch(s, func(n int) { batches.Add(1); batched.Add(int64(n)) })

	type ack struct {
		first int64
		ids   []uuid.UUID
	}
	var (
		mu        sync.Mutex
		acks      []ack
		conflicts int
		wg        sync.WaitGroup
	)
	record := func(res log.AppendResult, ids []uuid.UUID) {
		mu.Lock()
		defer mu.Unlock()
		acks = append(acks, ack{res.FirstVersion, ids})
	}
	errs := make(chan error, 1000)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := log.Store(s)
			if w%16 == 15 {
				st = other
			}
			for i := 0; i < 8; i++ {
				evs := withIDs(events(1+(w+i)%3, "G"))
				ids := []uuid.UUID{}
				for _, e := range evs {
					ids = append(ids, e.ID)
				}
				req := log.AppendRequest{Stream: "group-1", Expected: log.Any, Events: evs}
				switch i % 4 {
				case 1: // an exact expected version that is usually stale
					info, err := s.Info(context.Background(), "group-1")
					if err == nil {
						req.Expected = log.ExpectedVersion(info.Version)
					}
				case 2: // the same append twice at once
					var inner sync.WaitGroup
					results := make([]log.AppendResult, 2)
					for k := 0; k < 2; k++ {
						inner.Add(1)
						go func(k int) {
							defer inner.Done()
							res, err := st.Append(context.Background(), req)
							if err != nil {
								errs <- err
							}
							results[k] = res
						}(k)
					}
					inner.Wait()
					if results[0].FirstVersion != results[1].FirstVersion || results[0].Duplicate == results[1].Duplicate {
						errs <- errors.New("identical appends got different versions or both/neither written")
					}
					record(results[0], ids)
					continue
				}
				res, err := st.Append(context.Background(), req)
				var wev *log.WrongExpectedVersionError
				switch {
				case errors.As(err, &wev):
					mu.Lock()
					conflicts++
					mu.Unlock()
					if wev.Current == int64(req.Expected) {
						errs <- errors.New("conflict reported with current == expected")
					}
				case err != nil:
					errs <- err
				default:
					record(res, ids)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := readAll(t, s, log.ReadRange{Stream: "group-1"})
	total := 0
	for _, a := range acks {
		total += len(a.ids)
		for i, id := range a.ids {
			if v := a.first + int64(i); v > int64(len(got)) || got[v-1].ID != id {
				t.Fatalf("acknowledged event %s not at version %d", id, v)
			}
		}
	}
	checkGapless(t, got, total)
	// 64 appenders on one stream: without coalescing every batch would
	// carry one append; demand a clear factor, well below what it reaches
	// (about 20).
	if b, n := batches.Load(), batched.Load(); b == 0 || n < 4*b {
		t.Fatalf("%d batches committed %d appends: too little coalescing", b, n)
	} else {
		t.Logf("%d appends in %d batches (%.1f per batch), %d honest conflicts", n, b, float64(n)/float64(b), conflicts)
	}
}

// TestBigAppendIsNotStarved: an append that needs a fresh bucket is not
// overtaken by a trickle of small ones; the bucket seals and it lands.
func TestBigAppendIsNotStarved(t *testing.T) {
	s, _ := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketMaxEvents = 1000
		o.Limits.MaxEventsPerAppend = 1000
	})
	mustAppend(t, s, "starve-1", log.Any, events(10, "Seed"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
		}
		wg.Wait()
	}()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(context.Background(), log.AppendRequest{Stream: "starve-1", Expected: log.Any, Events: events(1, "Small")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := s.Append(ctx, log.AppendRequest{Stream: "starve-1", Expected: log.Any, Events: events(995, "Big")})
		cancel()
		if err != nil {
			t.Fatalf("big append %d: %v", i, err)
		}
		if res.LastVersion-res.FirstVersion != 994 {
			t.Fatalf("big append: %+v", res)
		}
	}
	close(stop)
	stopped = true
	wg.Wait()
	got := readAll(t, s, log.ReadRange{Stream: "starve-1"})
	checkGapless(t, got, len(got))
	bigs := 0
	for _, ev := range got {
		if ev.Type == "Big" {
			bigs++
		}
	}
	if bigs != 3*995 {
		t.Fatalf("%d Big events stored, want %d", bigs, 3*995)
	}
}

// TestRetryAfterLostRace: an "any" append that lost a conditional-write
// race (recording its ids at two bases) is still recognised on retry.
func TestRetryAfterLostRace(t *testing.T) {
	s1, o := cassandratest.NewStore(t, nil)
	s2 := cassandratest.Reopen(t, o)
	mustAppend(t, s1, "race-1", log.Any, events(1, "Seed"))  // s1 caches head 1
	mustAppend(t, s2, "race-1", log.Any, events(1, "Other")) // s1's cache is now stale
	evs := withIDs(events(2, "E"))
	first := mustAppend(t, s1, "race-1", log.Any, evs) // loses at base 1, wins at base 2
	if first.FirstVersion != 3 {
		t.Fatalf("first: %+v", first)
	}
	for _, st := range []log.Store{s1, s2} {
		res, err := st.Append(context.Background(), log.AppendRequest{Stream: "race-1", Expected: log.Any, Events: evs})
		if err != nil || !res.Duplicate || res.FirstVersion != 3 {
			t.Fatalf("retry: %+v %v", res, err)
		}
	}
	checkGapless(t, readAll(t, s1, log.ReadRange{Stream: "race-1"}), 4)
}

// TestQueuedAppendHonoursDeadline: while a group is being written, an
// append queued behind it whose deadline passes is withdrawn — reported
// unavailable and never written — while the append being written still
// gets its real outcome.
func TestQueuedAppendHonoursDeadline(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var hold atomic.Bool
	s, _ := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BeforeWrite = func() {
			if !hold.Load() {
				return
			}
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
	})
	mustAppend(t, s, "deadline-1", log.Any, events(1, "Seed"))
	hold.Store(true)
	first := withIDs(events(1, "Held"))
	firstDone := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), log.AppendRequest{Stream: "deadline-1", Expected: log.Any, Events: first})
		firstDone <- err
	}()
	<-entered // the first append's group is being written and held

	queued := withIDs(events(1, "Queued"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Append(ctx, log.AppendRequest{Stream: "deadline-1", Expected: log.Any, Events: queued})
	if !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("queued append past its deadline: %v, want ErrUnavailable", err)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("the append being written: %v", err)
	}
	got := readAll(t, s, log.ReadRange{Stream: "deadline-1"})
	checkGapless(t, got, 2)
	if got[1].ID != first[0].ID {
		t.Fatalf("version 2 is %s, want the held append", got[1].Type)
	}
	for _, ev := range got {
		if ev.ID == queued[0].ID {
			t.Fatal("the withdrawn append was written")
		}
	}
}
