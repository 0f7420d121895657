package cassandra

import (
	"context"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// schema/schema.cql: events. Reads only (version, time) of the named rows
// of one bucket, never payloads.
const cqlEventTimes = `SELECT version, time FROM events WHERE stream = ? AND bucket = ? AND version IN ?`

// probesPerRound is how many versions one round of the in-bucket search
// asks for: each round cuts the interval into probesPerRound+1 parts, so a
// bucket at the default 50,000-row cap takes 4 rounds (16^4 > 50,000).
const probesPerRound = 15

// VersionAt implements log.Store.
//
// Commit times never decrease along a stream's versions (partition.EventTime),
// also across buckets, so a bucket's static last_time is the newest time it
// holds and "time ≤ t" is true for a prefix of the versions. The search
// therefore has two steps, neither of which reads an event's payload:
//
//  1. The bucket: the first bucket whose last_time is after t holds the
//     answer (every bucket before it ends at or before t). The newest
//     bucket is read first, so the common case, t at or after the last
//     commit, costs the index read and one static row; otherwise a binary
//     search over the index reads log2(buckets) static rows (opened_at is
//     no help: it is the writer's clock and may be earlier than the
//     previous bucket's last_time).
//  2. The version within that bucket: a search by version, not a scan.
//     A scan of a bucket's (version, time) would still make Cassandra read
//     every row up to the answer, payloads included (they share the row),
//     up to the 50,000-row cap. Instead each round reads probesPerRound
//     rows by primary key in one query (version IN ...), spread evenly over
//     the interval still in doubt, plus the interval's first version, which
//     settles at once the frequent case of t falling between two buckets.
//     That is ⌈log16(rows)⌉ round trips of ≤ 16 rows each: 4 at the cap.
func (s *Store) VersionAt(ctx context.Context, stream log.StreamID, t time.Time) (int64, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return 0, err
	}
	bs, err := s.buckets(ctx, stream)
	if err != nil {
		return 0, err
	}
	return s.versionAt(ctx, stream, bs, t)
}

// versionAt is VersionAt over the stream's bucket index bs (ascending).
func (s *Store) versionAt(ctx context.Context, stream log.StreamID, bs []partition.Bucket, t time.Time) (int64, error) {
	if len(bs) == 0 {
		return 0, nil
	}
	// after reads bucket i's head and reports whether it holds an event
	// committed after t. A bucket without events (only the newest can be
	// one: indexed, not yet written) counts as after: it holds nothing at
	// or before t.
	heads := make(map[int]partition.Head, 2)
	after := func(i int) (bool, error) {
		h, _, ok, err := s.readBucketHead(ctx, stream, bs[i].Number, false)
		if err != nil {
			s.metrics.storageError("version_at")
			return false, err
		}
		if !ok {
			return true, nil
		}
		heads[i] = h
		return h.LastTime.After(t), nil
	}
	newest := len(bs) - 1
	a, err := after(newest)
	if err != nil {
		return 0, err
	}
	if !a {
		return heads[newest].LastVersion, nil
	}
	// Invariant: bucket hi is after t; every bucket below lo is not.
	lo, hi := 0, newest
	for lo < hi {
		mid := lo + (hi-lo)/2
		a, err := after(mid)
		if err != nil {
			return 0, err
		}
		if a {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	h, ok := heads[hi]
	if !ok {
		// No events in it: everything before it is at or before t.
		return bs[hi].FirstVersion - 1, nil
	}
	return s.searchBucket(ctx, stream, h, t)
}

// searchBucket returns the last version of bucket h committed at or before
// t, or h.FirstVersion-1 when its first event is after t. h.LastTime is
// after t.
func (s *Store) searchBucket(ctx context.Context, stream log.StreamID, h partition.Head, t time.Time) (int64, error) {
	// Invariant: version lo is at or before t (lo = first-1: "none of this
	// bucket"), version hi is after t.
	lo, hi := h.FirstVersion-1, h.LastVersion
	probes := make([]int64, 0, probesPerRound+1)
	times := make(map[int64]time.Time, probesPerRound+1)
	for hi-lo > 1 {
		probes = spread(probes[:0], lo, hi, probesPerRound)
		clear(times)
		iter := s.session.Query(cqlEventTimes, string(stream), h.Bucket, probes).WithContext(ctx).Idempotent(true).Iter()
		var (
			v  int64
			tm time.Time
		)
		for iter.Scan(&v, &tm) {
			times[v] = tm
		}
		if err := iter.Close(); err != nil {
			s.metrics.storageError("version_at")
			return 0, readErr(fmt.Sprintf("read event times of bucket %d", h.Bucket), err)
		}
		for _, p := range probes {
			tm, ok := times[p]
			if !ok {
				return 0, fmt.Errorf("bucket %d of %s: %w: version %d missing below last_version %d", h.Bucket, stream, errInternal, p, h.LastVersion)
			}
			if tm.After(t) {
				hi = p
				break
			}
			lo = p
		}
	}
	return lo, nil
}

// spread appends to dst, ascending and distinct, up to n+1 versions
// strictly between lo and hi (hi-lo > 1): lo+1, then n versions evenly
// spaced over the interval; every version of it when it holds no more.
func spread(dst []int64, lo, hi int64, n int) []int64 {
	if hi-lo-1 <= int64(n)+1 {
		for v := lo + 1; v < hi; v++ {
			dst = append(dst, v)
		}
		return dst
	}
	dst = append(dst, lo+1)
	for j := int64(1); j <= int64(n); j++ {
		if v := lo + j*(hi-lo)/int64(n+1); v > dst[len(dst)-1] {
			dst = append(dst, v)
		}
	}
	return dst
}
