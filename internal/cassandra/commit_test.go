package cassandra_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

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
	if b, n := batches.Load(), batched.Load(); b == 0 || b >= n {
		t.Fatalf("%d batches committed %d appends: no coalescing", b, n)
	} else {
		t.Logf("%d appends in %d batches (%.1f per batch), %d honest conflicts", n, b, float64(n)/float64(b), conflicts)
	}
}
