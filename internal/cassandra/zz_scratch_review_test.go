package cassandra_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

func TestScratchRetryAfterContendedAttempt(t *testing.T) {
	s1, o := cassandratest.NewStore(t, nil)
	s2 := cassandratest.Reopen(t, o)
	ctx := context.Background()
	mustAppend(t, s1, "c-1", log.Any, events(1, "Seed"))
	mustAppend(t, s2, "c-1", log.Any, events(1, "Other"))
	evs := withIDs(events(2, "E"))
	res, err := s1.Append(ctx, log.AppendRequest{Stream: "c-1", Expected: log.Any, Events: evs})
	t.Logf("original: %+v %v", res, err)
	sess := cassandratest.Session(t, o)
	iter := sess.Query(`SELECT id, base, position FROM event_ids WHERE stream = 'c-1' AND bucket IN (0, 0) AND id IN (?, ?)`, [16]byte(evs[0].ID), [16]byte(evs[1].ID)).Iter()
	var id uuid.UUID
	var base int64
	var pos int
	for iter.Scan((*[16]byte)(&id), &base, &pos) {
		t.Logf("row id=%s base=%d pos=%d", id, base, pos)
	}
	iter.Close()
	for _, st := range []log.Store{s1, s2} {
		r, err := st.Append(ctx, log.AppendRequest{Stream: "c-1", Expected: log.Any, Events: evs})
		if err != nil || !r.Duplicate {
			t.Errorf("retry of a stored append: %+v %v", r, err)
		}
	}
}
