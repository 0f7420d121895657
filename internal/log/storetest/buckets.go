package storetest

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// testBuckets: streams roll over to new partitions by row cap and by time
// (an injected clock), reads of every shape stay contiguous across the
// boundaries (with pages that do not line up with buckets), retries are
// recognised across a rollover, and VersionAt and "as of" reads agree with
// the stored commit times.
func testBuckets(t *testing.T, s *suite) {
	clk := newClock(epoch)
	c := s.cluster(t, Config{
		BucketWidth: time.Hour, BucketMaxEvents: 10, MaxEventsPerAppend: MaxAppend, PageSize: 7,
		Clock: sameClock(clk),
	})
	stores := storesOf(t, c)
	ctx := ctxT(t)

	s.run(t, "ByCap", func(t *testing.T) {
		const stream, total = "cap-1", 95
		led := newLedger(t)
		for i, n := 0, 0; n < total; i++ {
			k := min(1+i%MaxAppend, total-n)
			evs := events(k, "E")
			res, err := send(stores[i%len(stores)], stream, log.Any, evs)
			if led.record(stream, evs, res, err) != acked {
				t.Fatalf("append %d: %v", i, err)
			}
			n += k
		}
		led.check(t, stores)
		for i, st := range stores {
			info, err := st.Info(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			// At most 10 events a bucket: at least 10 buckets; an append
			// never splits, so a bucket holds at least 10-3.
			if info.Version != total || info.Buckets < 10 || info.Buckets > 14 || info.CurrentBucket != int64(info.Buckets-1) {
				t.Fatalf("instance %d: info %+v, want %d events in 10..14 buckets", i, info, total)
			}
		}
		for _, c := range []struct {
			r    log.ReadRange
			want []int64
		}{
			{log.ReadRange{Backward: true}, span(95, 1)},
			{log.ReadRange{From: 9, To: 12}, span(9, 12)},
			{log.ReadRange{From: 10, To: 11}, span(10, 11)},
			{log.ReadRange{From: 33, To: 71}, span(33, 71)},
			{log.ReadRange{From: 95, To: 95}, []int64{95}},
			{log.ReadRange{From: 40, To: 40}, []int64{40}},
			{log.ReadRange{From: 8, Limit: 15}, span(8, 22)},
			{log.ReadRange{From: 30, To: 60, Limit: 13, Backward: true}, span(60, 48)},
			{log.ReadRange{From: 9, To: 31, Backward: true}, span(31, 9)},
			{log.ReadRange{From: 90, To: 200}, span(90, 95)},
		} {
			for i, st := range stores {
				r := c.r
				r.Stream = stream
				wantVersions(t, fmt.Sprintf("instance %d read %+v", i, c.r), readAll(t, st, r), c.want)
			}
		}
		// Every version as a read's upper bound and as a limited read's
		// start, so some bound falls on each bucket's last version and
		// each limit ends inside, at and past a bucket (a forward read
		// reads the next bucket ahead while it wants more).
		st := stores[0]
		for v := int64(1); v <= total; v++ {
			from := max(1, v-12)
			wantVersions(t, fmt.Sprintf("read %d..%d", from, v), readAll(t, st, log.ReadRange{Stream: stream, From: from, To: v}), span(from, v))
			wantVersions(t, fmt.Sprintf("read 12 from %d", v), readAll(t, st, log.ReadRange{Stream: stream, From: v, Limit: 12}), span(v, min(v+11, total)))
		}
		// A read that stops in its first bucket, or fails there, while the
		// store may be reading the next ones ahead: it returns at once and
		// leaves nothing running (200 reads; a read left behind each time
		// would show as hundreds of goroutines). Appends of one event, so
		// a bucket holds more chunks than a reader buffers ahead.
		const short = "cap-2"
		for range 30 {
			mustAppend(t, st, short, log.Any, events(1, "E"))
		}
		boom := errors.New("boom")
		before := runtime.NumGoroutine()
		for i := range 200 {
			calls := 0
			err := st.ReadStream(ctx, log.ReadRange{Stream: short}, func(*log.RecordedEvent) error {
				if calls++; calls == 3 {
					if i%2 == 0 {
						return log.ErrStop
					}
					return boom
				}
				return nil
			})
			if calls != 3 || i%2 == 0 && err != nil || i%2 == 1 && !errors.Is(err, boom) {
				t.Fatalf("read %d stopped after 3 events: %d calls, %v", i, calls, err)
			}
		}
		if after := runtime.NumGoroutine(); after > before+100 {
			t.Fatalf("%d goroutines after 200 reads that stopped early, %d before", after, before)
		}
	})

	s.run(t, "RetryAcrossBuckets", func(t *testing.T) {
		// An "any" retry is recognised while the original is in the
		// stream's current or previous bucket; an exact retry always.
		const stream = "win-1"
		orig := events(2, "E")
		first := mustAppend(t, stores[0], stream, log.NoStream, orig) // bucket 0: 1..2
		for _, n := range []int{4, 4, 4} {                            // 3..10 in bucket 0, 11..14 in bucket 1
			mustAppend(t, stores[0], stream, log.Any, events(n, "F"))
		}
		for i, st := range stores {
			res, err := send(st, stream, log.Any, orig)
			wantDuplicate(t, fmt.Sprintf("any retry from the previous bucket on instance %d", i), res, err, first)
		}
		for _, n := range []int{4, 4} { // 15..18 in bucket 1, 19..22 in bucket 2
			mustAppend(t, stores[0], stream, log.Any, events(n, "G"))
		}
		for i, st := range stores {
			res, err := send(st, stream, log.NoStream, orig)
			wantDuplicate(t, fmt.Sprintf("exact retry two buckets back on instance %d", i), res, err, first)
			if info, err := st.Info(ctx, stream); err != nil || info.Buckets != 3 || info.Version != 22 {
				t.Fatalf("instance %d: info %+v %v, want 22 events in 3 buckets", i, info, err)
			}
		}
	})

	s.run(t, "ByTime", func(t *testing.T) {
		const stream = "time-1"
		var sent []struct{ from, to time.Time }
		step := func(n int, d time.Duration) {
			clk.Advance(d)
			from := clk.Now().Truncate(time.Millisecond)
			res := mustAppend(t, stores[len(sent)%len(stores)], stream, log.Any, events(n, "T"))
			to := clk.Now()
			if res.Time.Before(from) || res.Time.After(to) {
				t.Fatalf("append %d committed at %v, the instance's clock read %v..%v", len(sent), res.Time, from, to)
			}
			for range n {
				sent = append(sent, struct{ from, to time.Time }{from, to})
			}
		}
		step(3, 0)
		step(2, 30*time.Minute) // same bucket
		step(4, 31*time.Minute) // an hour after the bucket opened: bucket 1
		step(1, 5*time.Hour)    // bucket 2
		evs := readEverywhere(t, stores, stream)
		if len(evs) != 10 {
			t.Fatalf("%d events, want 10", len(evs))
		}
		for i, ev := range evs {
			if ev.Time.Before(sent[i].from) || ev.Time.After(sent[i].to) {
				t.Fatalf("version %d stored at %v, appended while the clock read %v..%v", ev.Version, ev.Time, sent[i].from, sent[i].to)
			}
		}
		for i, st := range stores {
			info, err := st.Info(ctx, stream)
			if err != nil || info.Buckets != 3 || info.CurrentBucket != 2 || info.Version != 10 {
				t.Fatalf("instance %d: info %+v %v, want 10 events in 3 buckets", i, info, err)
			}
			if info.CreatedAt.IsZero() || info.CreatedAt.After(evs[0].Time) {
				t.Fatalf("instance %d: created at %v, first event at %v", i, info.CreatedAt, evs[0].Time)
			}
		}
		for i, st := range stores {
			wantVersions(t, fmt.Sprintf("instance %d read 4..7", i), readAll(t, st, log.ReadRange{Stream: stream, From: 4, To: 7}), span(4, 7))
			wantVersions(t, fmt.Sprintf("instance %d read back 10..5", i), readAll(t, st, log.ReadRange{Stream: stream, From: 5, Backward: true}), span(10, 5))
		}
	})

	s.run(t, "VersionAt", func(t *testing.T) {
		const stream = "tt-1"
		for i := range 40 {
			mustAppend(t, stores[i%len(stores)], stream, log.Any, events(1+i%MaxAppend, "E"))
			clk.Advance(time.Duration(1+i%3)*time.Millisecond + 300*time.Microsecond)
			switch i {
			case 10:
				clk.Advance(2 * time.Hour) // the bucket's hour is over
			case 20:
				clk.Advance(-time.Hour) // the clock steps back: times repeat, never go back
			case 30:
				clk.Advance(90 * time.Minute)
			}
		}
		evs := readEverywhere(t, stores, stream)
		if info, err := stores[0].Info(ctx, stream); err != nil || info.Buckets < 10 {
			t.Fatalf("info %+v %v, want buckets rolled over by time and by cap", info, err)
		}
		probes := probeTimes(evs)
		for i, st := range stores {
			for _, at := range probes {
				got, err := st.VersionAt(ctx, stream, at)
				if err != nil {
					t.Fatalf("instance %d: VersionAt(%s): %v", i, at.Format(time.RFC3339Nano), err)
				}
				if want := oracleVersionAt(evs, at); got != want {
					t.Fatalf("instance %d: VersionAt(%s) = %d, want %d", i, at.Format(time.RFC3339Nano), got, want)
				}
			}
		}
		for _, at := range []time.Time{{}, evs[0].Time, evs[0].Time.Add(-time.Nanosecond), epoch.Add(100 * 24 * time.Hour)} {
			if v, err := stores[0].VersionAt(ctx, "nothing-1", at); err != nil || v != 0 {
				t.Fatalf("VersionAt of a stream without events: %d %v", v, err)
			}
		}
		_, err := stores[0].VersionAt(ctx, "bad stream", epoch)
		wantValidation(t, "VersionAt of a bad stream id", err, log.CodeInvalidStreamID)

		// Reads "as of" a moment are the prefix VersionAt names, cut
		// further by the range.
		// A moment before the first event reads as the stream not there
		// yet, as LoadStateAt says.
		notYet := 0
		for i, at := range probes {
			if at.IsZero() {
				continue // a zero UntilTime means no cut
			}
			v := oracleVersionAt(evs, at)
			if i%7 != 0 && (v != 0 || notYet > 0) {
				continue // a sample is enough: VersionAt is checked above
			}
			for _, r := range []log.ReadRange{{}, {From: 5}, {From: 5, To: 50}, {Backward: true}, {Backward: true, Limit: 3}} {
				r.Stream, r.UntilTime = stream, at
				for j, st := range stores {
					what := fmt.Sprintf("instance %d read %+v", j, r)
					if v == 0 {
						if got, err := tryReadAll(st, r); !errors.Is(err, log.ErrStreamNotYet) || len(got) != 0 {
							t.Fatalf("%s, before the first event: %d events, %v; want ErrStreamNotYet", what, len(got), err)
						}
						continue
					}
					wantVersions(t, what, readAll(t, st, r), cutVersions(r, v))
				}
			}
			if v == 0 {
				notYet++
			}
		}
		if notYet == 0 {
			t.Fatal("no probe before the first event")
		}
		for _, r := range []log.ReadRange{{UntilTime: epoch}, {UntilTime: epoch.Add(100 * 24 * time.Hour), Backward: true}} {
			r.Stream = "nothing-1"
			if got, err := tryReadAll(stores[0], r); !errors.Is(err, log.ErrStreamNotYet) || len(got) != 0 {
				t.Fatalf("read %+v of a stream without events: %d events, %v; want ErrStreamNotYet", r, len(got), err)
			}
		}
		last := evs[len(evs)-1]
		if _, err := log.LoadStateAt(ctx, stores[0], stream, evs[0].Time.Add(-time.Millisecond)); !errors.Is(err, log.ErrStreamNotYet) {
			t.Fatalf("state before the first event: %v, want not yet", err)
		}
		st, err := log.LoadStateAt(ctx, stores[0], stream, last.Time)
		if err != nil || st.Version != last.Version {
			t.Fatalf("state at the last commit: %+v %v", st, err)
		}
	})
}

// oracleVersionAt is VersionAt's definition, by brute force: the last
// version committed at or before t.
func oracleVersionAt(evs []log.RecordedEvent, t time.Time) int64 {
	var v int64
	for _, ev := range evs {
		if !ev.Time.After(t) {
			v = ev.Version
		}
	}
	return v
}

// probeTimes are the moments worth asking about: every distinct commit
// time and a nanosecond either side, long before the first and long after
// the last, and the zero time.
func probeTimes(evs []log.RecordedEvent) []time.Time {
	ts := []time.Time{{}, evs[0].Time.Add(-24 * time.Hour), evs[len(evs)-1].Time.Add(24 * time.Hour)}
	for i, ev := range evs {
		if i > 0 && ev.Time.Equal(evs[i-1].Time) {
			continue
		}
		for _, d := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond} {
			ts = append(ts, ev.Time.Add(d))
		}
	}
	return ts
}

// cutVersions is what a read of r returns from a stream whose version at
// r.UntilTime is v (its head is at least v).
func cutVersions(r log.ReadRange, v int64) []int64 {
	r, ok := r.Cut(v)
	if !ok {
		return nil
	}
	from := max(r.From, 1)
	if from > r.To {
		return nil
	}
	out := span(from, r.To)
	if r.Backward {
		out = span(r.To, from)
	}
	if r.Limit > 0 && len(out) > r.Limit {
		out = out[:r.Limit]
	}
	return out
}
