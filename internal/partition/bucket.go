package partition

import (
	"errors"
	"sort"
	"time"
)

// Bucket locates one partition of a stream.
type Bucket struct {
	Number       int64 // 0, 1, 2, …
	FirstVersion int64 // the first version it holds (1 for bucket 0)
}

// Head is the state of a stream's newest bucket.
type Head struct {
	Bucket       int64
	FirstVersion int64
	// LastVersion is the stream's version: the last version stored, in
	// this bucket or, for a bucket not yet created, in the one before.
	LastVersion int64
	// Created is false for a bucket that is indexed but holds no events yet
	// (a writer sealed the previous bucket and stopped before the first
	// append to this one).
	Created  bool
	Sealed   bool
	OpenedAt time.Time
	LastTime time.Time // commit time of LastVersion
}

// Rows is the number of events in the head bucket.
func (h Head) Rows() int64 {
	if !h.Created {
		return 0
	}
	return h.LastVersion - h.FirstVersion + 1
}

// Next is the head of the bucket that follows h once h is sealed.
func (h Head) Next() Head {
	return Head{Bucket: h.Bucket + 1, FirstVersion: h.LastVersion + 1, LastVersion: h.LastVersion, LastTime: h.LastTime}
}

// Policy decides when a bucket seals.
type Policy struct {
	Width     time.Duration // time window, from the bucket's opening
	MaxEvents int64         // row cap
}

// Validate reports a policy that cannot bound partitions.
func (p Policy) Validate() error {
	if p.Width <= 0 {
		return errors.New("bucket width must be positive")
	}
	if p.MaxEvents <= 0 {
		return errors.New("bucket max events must be positive")
	}
	return nil
}

// MustSeal reports whether an append of n events must go to a new bucket
// rather than h: h is sealed already, its window has ended by now, or the
// append would take it over the cap. An empty (uncreated) bucket never
// needs sealing, so an append larger than the cap still finds a home.
func (p Policy) MustSeal(h Head, n int, now time.Time) bool {
	if !h.Created {
		return false
	}
	if h.Sealed {
		return true
	}
	if h.Rows()+int64(n) > p.MaxEvents {
		return true
	}
	return !now.Before(h.OpenedAt.Add(p.Width))
}

// EventTime is the commit time for an append after h: the writer's clock,
// but never earlier than the stream's last commit time, so times within a
// stream never go backwards even when writers' clocks disagree.
func EventTime(h Head, now time.Time) time.Time {
	if now.Before(h.LastTime) {
		return h.LastTime
	}
	return now
}

// Span is the part of a version range that one bucket holds.
type Span struct {
	Bucket   int64
	From, To int64 // inclusive; To = 0 means "to the end of the bucket"
}

// Locate returns the spans of buckets that hold versions from..to (to = 0:
// no upper bound), in ascending bucket order. buckets must be sorted by
// Number ascending and tile the stream (see package doc).
func Locate(buckets []Bucket, from, to int64) []Span {
	if from < 1 {
		from = 1
	}
	if to != 0 && to < from {
		return nil
	}
	// The first bucket that may hold from: the last with FirstVersion ≤ from.
	i := sort.Search(len(buckets), func(i int) bool { return buckets[i].FirstVersion > from }) - 1
	if i < 0 {
		i = 0
	}
	var spans []Span
	for ; i < len(buckets); i++ {
		b := buckets[i]
		if to != 0 && b.FirstVersion > to {
			break
		}
		s := Span{Bucket: b.Number, From: max(from, b.FirstVersion), To: to}
		if i+1 < len(buckets) {
			last := buckets[i+1].FirstVersion - 1
			if s.To == 0 || s.To > last {
				s.To = last
			}
			if s.To < s.From {
				continue // an empty bucket
			}
		}
		spans = append(spans, s)
	}
	return spans
}
