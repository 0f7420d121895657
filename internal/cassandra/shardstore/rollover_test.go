package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestInterruptedRollover: an owner whose log segment is full stops in
// the middle of opening the next — before the opening ran ("open"), or
// after it applied with its answer lost ("opened"), with its tail written
// or not — and is paused from then on. The appends that needed the new segment are refused as not
// written; another instance takes the shard over, continues the log in
// the next segment, and every stream and the all feed hold each
// acknowledged append exactly once, gapless, followed by the new owner's.
func TestInterruptedRollover(t *testing.T) {
	for _, c := range []struct {
		name, op  string
		fillDelay time.Duration
	}{
		{"BeforeOpen", "open", 0},
		{"OpenedAnswerLost", "opened", 0},
		// The owner opens the next segment with its tail unwritten (an
		// hour's fill delay): the segment's filled static points into the
		// previous one, and the new owner's catch-up reads across both.
		{"OpenedTailUnwritten", "opened", time.Hour},
	} {
		op := c.op
		t.Run(c.name, func(t *testing.T) {
			o := newKeyspace(t, 1) // 50 records per segment
			var armed, paused atomic.Bool
			failed := errors.New("the owner stopped here")
			a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, FillDelay: c.fillDelay,
				LogFault: func(f string, shard int, err error) error {
					if f == op && armed.Load() {
						paused.Store(true) // no more renewals: the owner is gone
						return failed
					}
					return err
				}})
			defer a.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const streams = 5
			acked := map[string]int{}
			// 49 records: the first segment one short of full.
			for i := 0; i < 49; i++ {
				s := fmt.Sprintf("roll-%d", i%streams)
				if _, err := appendN(ctx, a, s, log.ExpectedVersion(acked[s]), 1); err != nil {
					t.Fatal(err)
				}
				acked[s]++
			}
			if _, err := appendN(ctx, a, "roll-0", log.ExpectedVersion(acked["roll-0"]), 1); err != nil {
				t.Fatal(err) // record 50: the segment is full
			}
			acked["roll-0"]++
			armed.Store(true)
			_, err := appendN(ctx, a, "roll-1", log.ExpectedVersion(acked["roll-1"]), 1)
			if !errors.Is(err, log.ErrUnavailable) {
				t.Fatalf("the append that needed the next segment: %v, want ErrUnavailable (nothing written)", err)
			}
			armed.Store(false)
			if c.fillDelay > 0 {
				session, err := cassandra.Connect(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				var rows int
				err = session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, "roll-0").Scan(&rows)
				session.Close()
				if err != nil || rows != 0 {
					t.Fatalf("roll-0 has %d rows before the takeover (%v): the test needs the tail unwritten when the segment opened", rows, err)
				}
			}

			b := open(t, shardstore.Options{Cassandra: o})
			defer b.Close()
			deadline := time.Now().Add(45 * time.Second)
			for {
				_, err := appendN(ctx, b, "roll-1", log.ExpectedVersion(acked["roll-1"]), 1)
				if err == nil {
					acked["roll-1"]++
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the new owner's append: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			for i := 0; i < 60; i++ { // well into the next segment
				s := fmt.Sprintf("roll-%d", i%streams)
				if _, err := appendN(ctx, b, s, log.ExpectedVersion(acked[s]), 1); err != nil {
					t.Fatalf("%s after the takeover: %v", s, err)
				}
				acked[s]++
			}
			all := map[log.StreamID][]log.RecordedEvent{}
			for s, n := range acked {
				evs := readAll(t, b, s)
				checkGapless(t, s, evs, n)
				all[log.StreamID(s)] = evs
			}
			checkAllFeed(t, b, all)
		})
	}
}
