package shardstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestTimeTravelAnswerIsFinal: an answer as of a moment already past (by
// the one owner's own clock, no skew at all) does not change later
// (README, "Time travel": older answers are final). A commit's time is
// taken before its conditional write; a read made while that write is in
// flight (a slow Paxos round, or the settling of an unknown outcome), as of
// a moment after that time, answered without the commit, which was then
// acknowledged with a time before the moment. A read now waits for the
// batch in flight when it appends to the read's stream.
func TestTimeTravelAnswerIsFinal(t *testing.T) {
	o := newKeyspace(t, 1)
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	s := open(t, shardstore.Options{Cassandra: o, BeforeCommit: func(int) {
		if hold.Load() {
			held <- struct{}{}
			<-release
		}
	}})
	defer s.Close()
	ctx := context.Background()
	const stream = "tt-slow-1"
	if _, err := appendN(ctx, s, stream, log.NoStream, 1); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	done := make(chan log.AppendResult, 1)
	go func() {
		r, err := appendN(ctx, s, stream, 1, 1)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-held // the commit's time is taken, its conditional write not yet sent
	hold.Store(false)
	time.Sleep(500 * time.Millisecond) // a slow round
	moment := time.Now().Add(-200 * time.Millisecond)
	// The commit lands a second later, whatever the reads do meanwhile
	// (a store that waits for it waits that long).
	time.AfterFunc(time.Second, func() { close(release) })
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	before, err := s.VersionAt(rctx, stream, moment)
	if err != nil {
		t.Fatal(err)
	}
	var page []int64
	err = s.ReadStream(rctx, log.ReadRange{Stream: stream, UntilTime: moment}, func(e *log.RecordedEvent) error {
		page = append(page, e.Version)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	after, err := s.VersionAt(ctx, stream, moment)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v2 committed at %s, acknowledged at about %s; moment %s", r.Time.Format(time.RFC3339Nano), time.Now().Format(time.RFC3339Nano), moment.Format(time.RFC3339Nano))
	if r.Time.After(moment) {
		t.Fatalf("v2's time %s is after the moment: the test did not set up what it meant to", r.Time)
	}
	if before != after {
		t.Fatalf("VersionAt(%s), a moment already 200 ms past when asked: %d then %d (events as of it: %v, then v2 appeared committed at %s)",
			moment.Format(time.RFC3339Nano), before, after, page, r.Time.Format(time.RFC3339Nano))
	}
}
