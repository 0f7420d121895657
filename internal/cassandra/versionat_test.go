package cassandra_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// oracleVersionAt is the definition VersionAt implements, by brute force
// over every event of the stream: the last version committed at or before t.
func oracleVersionAt(evs []log.RecordedEvent, t time.Time) int64 {
	var v int64
	for _, ev := range evs {
		if !ev.Time.After(t) {
			v = ev.Version
		}
	}
	return v
}

// probeTimes are the moments worth asking about for evs: every distinct
// commit time, a nanosecond and a millisecond either side of it, long
// before the first and long after the last, and the zero time.
func probeTimes(evs []log.RecordedEvent) []time.Time {
	ts := []time.Time{{}, evs[0].Time.Add(-24 * time.Hour), evs[len(evs)-1].Time.Add(24 * time.Hour)}
	for i, ev := range evs {
		if i > 0 && ev.Time.Equal(evs[i-1].Time) {
			continue
		}
		for _, d := range []time.Duration{-time.Millisecond, -time.Nanosecond, 0, time.Nanosecond, time.Millisecond} {
			ts = append(ts, ev.Time.Add(d))
		}
	}
	return ts
}

// mustVersionAt checks VersionAt(t) against the oracle.
func mustVersionAt(t *testing.T, s log.Store, stream string, evs []log.RecordedEvent, at time.Time) int64 {
	t.Helper()
	got, err := s.VersionAt(context.Background(), log.StreamID(stream), at)
	if err != nil {
		t.Fatalf("VersionAt(%s, %s): %v", stream, at.Format(time.RFC3339Nano), err)
	}
	if want := oracleVersionAt(evs, at); got != want {
		t.Fatalf("VersionAt(%s, %s) = %d, want %d", stream, at.Format(time.RFC3339Nano), got, want)
	}
	return got
}

// timeTravelStream writes a stream whose buckets roll over by time and by
// row cap, with commit times that repeat (several events per append,
// a writer clock that goes backwards) and jump (hours between buckets). It
// returns every event as stored.
func timeTravelStream(t *testing.T, s log.Store, clock *fakeClock, stream string) []log.RecordedEvent {
	t.Helper()
	for i := range 60 {
		mustAppend(t, s, stream, log.Any, events(1+i%4, "E"))
		clock.Advance(time.Duration(1+i%3)*time.Millisecond + 300*time.Microsecond)
		switch i {
		case 10:
			clock.Advance(2 * time.Hour) // bucket window over: next append opens a new bucket
		case 20:
			clock.Advance(-time.Hour) // a writer clock behind: times repeat, never go back
		case 30:
			clock.Advance(90 * time.Minute)
		case 45:
			clock.Advance(3 * time.Hour)
		}
	}
	evs := readAll(t, s, log.ReadRange{Stream: log.StreamID(stream)})
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatalf("time goes backwards at version %d", evs[i].Version)
		}
	}
	return evs
}

func TestVersionAt(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketWidth = time.Hour
		o.BucketMaxEvents = 40
		o.Limits.MaxEventsPerAppend = 10
		o.Now = clock.Now
	})
	evs := timeTravelStream(t, s, clock, "tt-1")
	bs := rawBuckets(t, cassandratest.Session(t, o), "tt-1")
	checkBuckets(t, bs, int64(len(evs)), 40)
	if len(bs) < 5 {
		t.Fatalf("want buckets rolled over by time and by cap, got %d", len(bs))
	}

	t.Run("EveryBoundary", func(t *testing.T) {
		for _, at := range probeTimes(evs) {
			mustVersionAt(t, s, "tt-1", evs, at)
		}
	})
	t.Run("ExactTimeIncluded", func(t *testing.T) {
		for _, ev := range evs {
			if v := mustVersionAt(t, s, "tt-1", evs, ev.Time); v < ev.Version {
				t.Fatalf("version %d at its own time %s: VersionAt %d", ev.Version, ev.Time, v)
			}
		}
	})
	t.Run("BeforeFirst", func(t *testing.T) {
		if v := mustVersionAt(t, s, "tt-1", evs, evs[0].Time.Add(-time.Millisecond)); v != 0 {
			t.Fatalf("before the first event: %d", v)
		}
	})
	t.Run("AfterHead", func(t *testing.T) {
		if v := mustVersionAt(t, s, "tt-1", evs, evs[len(evs)-1].Time.Add(time.Millisecond)); v != int64(len(evs)) {
			t.Fatalf("after the head: %d", v)
		}
	})
	t.Run("BetweenBuckets", func(t *testing.T) {
		// The moment just before each bucket's first event: the answer is
		// the previous bucket's last version.
		for _, b := range bs[1:] {
			first, prev := evs[b.first-1], evs[b.first-2]
			v := mustVersionAt(t, s, "tt-1", evs, first.Time.Add(-time.Nanosecond))
			if first.Time.After(prev.Time) && v != prev.Version {
				t.Fatalf("bucket %d starts at %d: VersionAt just before = %d, want %d", b.bucket, b.first, v, prev.Version)
			}
		}
	})
	t.Run("NoStream", func(t *testing.T) {
		v, err := s.VersionAt(context.Background(), "tt-missing", clock.Now())
		if err != nil || v != 0 {
			t.Fatalf("missing stream: %d %v", v, err)
		}
	})
	t.Run("ErrInvalidStreamID", func(t *testing.T) {
		var ve *log.ValidationError
		if _, err := s.VersionAt(context.Background(), "bad id", clock.Now()); !errors.As(err, &ve) || ve.Code != log.CodeInvalidStreamID {
			t.Fatalf("got %v", err)
		}
	})
}

// TestVersionAtLargeBucket searches buckets of hundreds of rows, one time
// each, so the in-bucket search takes several rounds and every position of
// the answer within a round is met.
func TestVersionAtLargeBucket(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketMaxEvents = 300
		o.Limits.MaxEventsPerAppend = 1
		o.Now = clock.Now
	})
	// One event per append, each a millisecond later: 450 distinct times
	// over two buckets (300 + 150).
	for range 450 {
		mustAppend(t, s, "big-1", log.Any, events(1, "E"))
		clock.Advance(time.Millisecond)
	}
	evs := readAll(t, s, log.ReadRange{Stream: "big-1"})
	checkGapless(t, evs, 450)
	checkBuckets(t, rawBuckets(t, cassandratest.Session(t, o), "big-1"), 450, 300)
	for v := int64(1); v <= 450; v += 3 {
		ev := evs[v-1]
		for _, d := range []time.Duration{-time.Microsecond, 0, 500 * time.Microsecond} {
			mustVersionAt(t, s, "big-1", evs, ev.Time.Add(d))
		}
	}
	for _, v := range []int64{1, 2, 299, 300, 301, 449, 450} {
		mustVersionAt(t, s, "big-1", evs, evs[v-1].Time)
		mustVersionAt(t, s, "big-1", evs, evs[v-1].Time.Add(-time.Nanosecond))
	}
}

// TestVersionAtUnwrittenBucket: a writer sealed bucket 0 and indexed bucket
// 1, then stopped before its first append. Bucket 1 holds nothing, so
// every moment maps into bucket 0.
func TestVersionAtUnwrittenBucket(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) { o.Now = clock.Now })
	for range 3 {
		mustAppend(t, s, "unwritten-1", log.Any, events(1, "E"))
		clock.Advance(time.Second)
	}
	sess := cassandratest.Session(t, o)
	if applied, err := sess.Query(`UPDATE events SET sealed = true WHERE stream = 'unwritten-1' AND bucket = 0 IF last_version = 3`).MapScanCAS(map[string]any{}); err != nil || !applied {
		t.Fatalf("seal: %v %v", applied, err)
	}
	if err := sess.Query(`INSERT INTO stream_buckets (stream, bucket, first_version) VALUES ('unwritten-1', 1, 4)`).Exec(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, s, log.ReadRange{Stream: "unwritten-1"})
	for _, at := range probeTimes(evs) {
		mustVersionAt(t, s, "unwritten-1", evs, at)
	}
	// An indexed stream whose bucket 0 was never written has no versions.
	if err := sess.Query(`INSERT INTO stream_buckets (stream, bucket, first_version) VALUES ('unwritten-2', 0, 1)`).Exec(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.VersionAt(context.Background(), "unwritten-2", clock.Now()); err != nil || v != 0 {
		t.Fatalf("unwritten stream: %d %v", v, err)
	}
}

// TestReadUntilTime: a read with UntilTime is the read of the versions
// committed by then, for every direction, bound and limit.
func TestReadUntilTime(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	s, _ := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketWidth = time.Hour
		o.BucketMaxEvents = 40
		o.Limits.MaxEventsPerAppend = 10
		o.PageSize = 16 // pages that do not line up with buckets
		o.Now = clock.Now
	})
	evs := timeTravelStream(t, s, clock, "until-1")
	head := int64(len(evs))
	// A sample of the moments (the zero UntilTime means "no cut"): the
	// search itself is checked at every boundary by TestVersionAt.
	var moments []time.Time
	for i, at := range probeTimes(evs) {
		if !at.IsZero() && (i < 3 || i%15 == 0 || i%15 == 7) {
			moments = append(moments, at)
		}
	}
	for _, at := range moments {
		cut := oracleVersionAt(evs, at)
		for _, r := range []log.ReadRange{
			{}, {Backward: true}, {From: 5}, {From: 5, Backward: true}, {To: 50}, {From: 20, To: 60, Backward: true},
			{Limit: 3}, {Limit: 3, Backward: true}, {From: head}, {From: head + 5},
		} {
			r.Stream, r.UntilTime = "until-1", at
			got := readAll(t, s, r)
			// The expected read: the range cut at the oracle's version.
			from, to := max(r.From, 1), r.To
			if to == 0 || to > cut {
				to = cut
			}
			var want []int64
			for v := from; v <= to; v++ {
				want = append(want, v)
			}
			if r.Backward {
				slices.Reverse(want)
			}
			if r.Limit > 0 && len(want) > r.Limit {
				want = want[:r.Limit]
			}
			var gotV []int64
			for _, ev := range got {
				gotV = append(gotV, ev.Version)
				if ev.Time.After(at) {
					t.Fatalf("%+v: version %d committed at %s, after until", r, ev.Version, ev.Time)
				}
			}
			if !slices.Equal(gotV, want) {
				t.Fatalf("read %+v (until %s → version %d): got %v, want %v", r, at.Format(time.RFC3339Nano), cut, gotV, want)
			}
		}
	}
}

// TestLoadStateAt: the aggregate as it was at a moment is the latest
// snapshot at or below the version committed by then, plus the events
// after it up to that version; a snapshot taken later, of a later version,
// is never used for an earlier moment.
func TestLoadStateAt(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))
	s, _ := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketWidth = time.Hour
		o.BucketMaxEvents = 40
		o.Limits.MaxEventsPerAppend = 10
		o.Now = clock.Now
	})
	ctx := ctxT(t)
	evs := timeTravelStream(t, s, clock, "agg-1")
	snaps := []int64{5, 37, 90}
	for _, v := range snaps {
		if _, err := s.PutSnapshot(ctx, "agg-1", v, json.RawMessage(fmt.Sprintf(`{"v":%d}`, v))); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range probeTimes(evs) {
		version := oracleVersionAt(evs, at)
		st, err := log.LoadStateAt(ctx, s, "agg-1", at)
		if version == 0 {
			if !errors.Is(err, log.ErrStreamNotFound) {
				t.Fatalf("at %s, before the first event: %+v %v, want ErrStreamNotFound", at, st, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
		var snap int64
		for _, v := range snaps {
			if v <= version {
				snap = v
			}
		}
		if st.Version != version || st.Stream != "agg-1" {
			t.Fatalf("at %s: version %d, want %d", at, st.Version, version)
		}
		switch {
		case snap == 0 && st.Snapshot != nil:
			t.Fatalf("at %s (version %d): snapshot %d, want none", at, version, st.Snapshot.Version)
		case snap != 0 && (st.Snapshot == nil || st.Snapshot.Version != snap || string(st.Snapshot.State) != fmt.Sprintf(`{"v":%d}`, snap)):
			t.Fatalf("at %s (version %d): snapshot %+v, want %d", at, version, st.Snapshot, snap)
		}
		if st.Tail.From != snap+1 || st.Tail.To != version || !st.Tail.UntilTime.IsZero() {
			t.Fatalf("at %s: tail %+v, want %d..%d", at, st.Tail, snap+1, version)
		}
	}
	if _, err := log.LoadStateAt(ctx, s, "agg-missing", clock.Now()); !errors.Is(err, log.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
}
