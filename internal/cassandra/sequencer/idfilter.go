package sequencer

import (
	"github.com/bits-and-blooms/bloom/v3"
	"github.com/google/uuid"
)

// idFilter remembers, per bucket, every client id committed to a stream's
// current and previous bucket, as Bloom filters: an id a filter says it
// has not seen was never committed there, so an append whose ids all
// miss needs no lookup in the stream partitions. A head gets one when its
// id set was complete and it starts dropping ids (pruneIDs): a hot
// stream's appends were otherwise looked up one by one (41,809 id reads
// for 50,006 appends to one stream, docs/benchmarks.md session 7).
type idFilter struct {
	cur, prev      int64 // bucket numbers; prev -1 when none
	curF, prevF    *bloom.BloomFilter
	capacity       uint
	falsePositives float64
}

// newIDFilter returns an empty filter for bucket cur (and prev), sized for
// capacity ids a bucket.
func newIDFilter(cur, prev int64, capacity int) *idFilter {
	f := &idFilter{cur: cur, prev: prev, capacity: uint(max(capacity, 1024)), falsePositives: 0.01}
	f.curF = bloom.NewWithEstimates(f.capacity, f.falsePositives)
	if prev >= 0 {
		f.prevF = bloom.NewWithEstimates(f.capacity, f.falsePositives)
	}
	return f
}

// add records id as committed to bucket b (one of the two the filter
// covers; an id of an older bucket is out of the retry scope and ignored).
func (f *idFilter) add(b int64, id uuid.UUID) {
	switch b {
	case f.cur:
		f.curF.Add(id[:])
	case f.prev:
		if f.prevF != nil {
			f.prevF.Add(id[:])
		}
	}
}

// rotate follows the stream into its next bucket: cur becomes the
// previous one, a new empty filter the current. false when the stream's
// buckets moved otherwise (the filter would then miss ids: drop it).
func (f *idFilter) rotate(cur, prev int64) bool {
	switch {
	case cur == f.cur && prev == f.prev:
		return true
	case cur == f.cur+1 && prev == f.cur:
		f.prev, f.prevF = f.cur, f.curF
		f.cur, f.curF = cur, bloom.NewWithEstimates(f.capacity, f.falsePositives)
		return true
	}
	return false
}

// bytes is the memory the filter's bits take.
func (f *idFilter) bytes() int {
	n := f.curF.Cap()
	if f.prevF != nil {
		n += f.prevF.Cap()
	}
	return int(n / 8)
}

// mayHave reports whether any of ids may have been committed to the
// filter's buckets (false: none was).
func (f *idFilter) mayHave(ids []uuid.UUID) bool {
	for _, id := range ids {
		if f.curF.Test(id[:]) || f.prevF != nil && f.prevF.Test(id[:]) {
			return true
		}
	}
	return false
}
