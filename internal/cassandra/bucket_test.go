package cassandra_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// bucketRow is what a bucket partition holds, read raw.
type bucketRow struct {
	bucket, first, last int64
	sealed              bool
	versions            []int64
}

// rawBuckets reads every bucket of a stream straight from the tables.
func rawBuckets(t *testing.T, sess *gocql.Session, stream string) []bucketRow {
	t.Helper()
	iter := sess.Query(`SELECT bucket, first_version FROM stream_buckets WHERE stream = ? ORDER BY bucket ASC`, stream).Iter()
	var out []bucketRow
	var b, fv int64
	for iter.Scan(&b, &fv) {
		out = append(out, bucketRow{bucket: b, first: fv})
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		it := sess.Query(`SELECT version, first_version, last_version, sealed FROM events WHERE stream = ? AND bucket = ?`, stream, out[i].bucket).Iter()
		var v int64
		var first, last *int64
		var sealed *bool
		for it.Scan(&v, &first, &last, &sealed) {
			out[i].versions = append(out[i].versions, v)
			if first == nil || *first != out[i].first {
				t.Fatalf("bucket %d: static first_version %v, index says %d", out[i].bucket, first, out[i].first)
			}
			out[i].last = *last
			out[i].sealed = sealed != nil && *sealed
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkBuckets asserts the buckets tile 1..head: every version in exactly
// one bucket, each bucket's rows first..last, only the newest unsealed, none
// over the cap.
func checkBuckets(t *testing.T, bs []bucketRow, head int64, maxRows int) {
	t.Helper()
	next := int64(1)
	for i, b := range bs {
		if b.bucket != int64(i) {
			t.Fatalf("bucket numbers not consecutive: %+v", bs)
		}
		if len(b.versions) == 0 {
			if i != len(bs)-1 {
				t.Fatalf("empty bucket %d in the middle", b.bucket)
			}
			continue
		}
		if maxRows > 0 && len(b.versions) > maxRows {
			t.Fatalf("bucket %d holds %d rows, cap %d", b.bucket, len(b.versions), maxRows)
		}
		if b.first != next {
			t.Fatalf("bucket %d starts at %d, want %d", b.bucket, b.first, next)
		}
		for _, v := range b.versions {
			if v != next {
				t.Fatalf("bucket %d: version %d, want %d", b.bucket, v, next)
			}
			next++
		}
		if b.last != next-1 {
			t.Fatalf("bucket %d: last_version %d, rows end at %d", b.bucket, b.last, next-1)
		}
		if i < len(bs)-1 && !b.sealed && len(bs[i+1].versions) > 0 {
			t.Fatalf("bucket %d not sealed but %d has events", b.bucket, bs[i+1].bucket)
		}
	}
	if next-1 != head {
		t.Fatalf("buckets end at %d, head %d", next-1, head)
	}
}

func TestBucketRolloverByRowCap(t *testing.T) {
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketMaxEvents = 10
		o.Limits.MaxEventsPerAppend = 10
		o.PageSize = 7 // pages that do not line up with buckets
	})
	total := 0
	for i := 0; total < 95; i++ {
		n := min(1+i%7, 95-total)
		mustAppend(t, s, "cap-1", log.Any, events(n, "E"))
		total += n
	}
	bs := rawBuckets(t, cassandratest.Session(t, o), "cap-1")
	checkBuckets(t, bs, 95, 10)
	if len(bs) < 10 {
		t.Fatalf("only %d buckets for 95 events at 10 per bucket", len(bs))
	}
	checkGapless(t, readAll(t, s, log.ReadRange{Stream: "cap-1"}), 95)

	back := readAll(t, s, log.ReadRange{Stream: "cap-1", Backward: true})
	for i, ev := range back {
		if ev.Version != int64(95-i) {
			t.Fatalf("backward: position %d has version %d", i, ev.Version)
		}
	}
	for _, r := range []struct{ from, to int64 }{{9, 12}, {10, 11}, {1, 95}, {33, 71}, {95, 95}} {
		got := readAll(t, s, log.ReadRange{Stream: "cap-1", From: r.from, To: r.to})
		if int64(len(got)) != r.to-r.from+1 || got[0].Version != r.from || got[len(got)-1].Version != r.to {
			t.Fatalf("range %d..%d: %d events", r.from, r.to, len(got))
		}
	}
	got := readAll(t, s, log.ReadRange{Stream: "cap-1", From: 8, Limit: 15})
	if len(got) != 15 || got[14].Version != 22 {
		t.Fatalf("limit across buckets: %d events, last %d", len(got), got[len(got)-1].Version)
	}
	info, err := s.Info(context.Background(), "cap-1")
	if err != nil || info.Version != 95 || info.Buckets != len(bs) || info.CurrentBucket != int64(len(bs)-1) {
		t.Fatalf("info %+v %v (raw buckets %d)", info, err, len(bs))
	}
}

func TestBucketRolloverByTime(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketWidth = time.Hour
		o.Now = clock.Now
	})
	mustAppend(t, s, "time-1", log.Any, events(3, "E"))
	clock.Advance(30 * time.Minute)
	mustAppend(t, s, "time-1", log.Any, events(2, "E")) // same bucket
	clock.Advance(31 * time.Minute)
	mustAppend(t, s, "time-1", log.Any, events(4, "E")) // window over: bucket 1
	clock.Advance(5 * time.Hour)
	mustAppend(t, s, "time-1", log.Any, events(1, "E")) // bucket 2
	bs := rawBuckets(t, cassandratest.Session(t, o), "time-1")
	checkBuckets(t, bs, 10, 0)
	if len(bs) != 3 || len(bs[0].versions) != 5 || len(bs[1].versions) != 4 || len(bs[2].versions) != 1 {
		t.Fatalf("buckets: %+v", bs)
	}
	got := readAll(t, s, log.ReadRange{Stream: "time-1"})
	checkGapless(t, got, 10)
	if !got[5].Time.Equal(clock.Now().Add(-5 * time.Hour)) {
		t.Fatalf("event 6 time %v", got[5].Time)
	}
}

// TestBucketsUnderClockSkew: two instances whose clocks are hours apart
// append to one stream concurrently with a 1-minute bucket width. Buckets
// still tile the versions exactly and commit times never go backwards.
func TestBucketsUnderClockSkew(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ahead, behind := newFakeClock(base.Add(3*time.Hour)), newFakeClock(base)
	mod := func(c *fakeClock) func(*cassandra.Options) {
		return func(o *cassandra.Options) { o.BucketWidth = time.Minute; o.Now = c.Now }
	}
	s1, o := cassandratest.NewStore(t, mod(ahead))
	o2 := o
	mod(behind)(&o2)
	s2 := cassandratest.Reopen(t, o2)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, w := range []struct {
		s log.Store
		c *fakeClock
	}{{s1, ahead}, {s2, behind}} {
		wg.Add(1)
		go func(i int, s log.Store, c *fakeClock) {
			defer wg.Done()
			for n := 0; n < 60; n++ {
				c.Advance(20 * time.Second)
				if _, err := s.Append(context.Background(), log.AppendRequest{Stream: "skew-1", Expected: log.Any, Events: events(1+n%2, fmt.Sprintf("W%d", i))}); err != nil {
					errs <- err
					return
				}
			}
		}(i, w.s, w.c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := readAll(t, s1, log.ReadRange{Stream: "skew-1"})
	checkGapless(t, got, 180)
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			t.Fatalf("time goes backwards at version %d: %v < %v", got[i].Version, got[i].Time, got[i-1].Time)
		}
	}
	bs := rawBuckets(t, cassandratest.Session(t, o), "skew-1")
	checkBuckets(t, bs, 180, 0)
	if len(bs) < 3 {
		t.Fatalf("expected several buckets, got %d", len(bs))
	}
}

// TestRecoversFromInterruptedRollover: a writer that sealed a bucket (and
// maybe indexed the next) and died before appending leaves a state the
// next append completes.
func TestRecoversFromInterruptedRollover(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		t.Run(fmt.Sprintf("Indexed=%v", indexed), func(t *testing.T) {
			s, o := cassandratest.NewStore(t, nil)
			mustAppend(t, s, "roll-1", log.Any, events(3, "E"))
			sess := cassandratest.Session(t, o)
			applied, err := sess.Query(`UPDATE events SET sealed = true WHERE stream = 'roll-1' AND bucket = 0 IF last_version = 3`).MapScanCAS(map[string]any{})
			if err != nil || !applied {
				t.Fatalf("seal: %v %v", applied, err)
			}
			if indexed {
				if err := sess.Query(`INSERT INTO stream_buckets (stream, bucket, first_version) VALUES ('roll-1', 1, 4)`).Exec(); err != nil {
					t.Fatal(err)
				}
			}
			for _, st := range []log.Store{s, cassandratest.Reopen(t, o)} { // stale cache and cold
				if _, err := st.Info(context.Background(), "roll-1"); err != nil {
					t.Fatal(err)
				}
				mustAppend(t, st, "roll-1", log.Any, events(1, "E"))
			}
			res := mustAppend(t, s, "roll-1", 5, events(1, "E"))
			if res.FirstVersion != 6 {
				t.Fatalf("first version %d", res.FirstVersion)
			}
			checkGapless(t, readAll(t, s, log.ReadRange{Stream: "roll-1"}), 6)
			checkBuckets(t, rawBuckets(t, sess, "roll-1"), 6, 0)
		})
	}
}
