package sequencer

import (
	"github.com/bits-and-blooms/bloom/v3"
	"github.com/google/uuid"
)

// idFilter remembers, per bucket, every client id committed to a stream's
// current and previous bucket, as Bloom filters: an id a filter says it
// has not seen was never committed there, so an append whose ids all
// miss needs no lookup in the stream partitions. A head gets one when its
// id set was complete and it starts dropping ids: past its own limit
// (pruneIDs; a hot stream's appends were otherwise looked up one by one,
// 41,809 id reads for 50,006 appends to one stream, docs/benchmarks.md
// session 7), or when the shard's heads pass their id budget (evict; past
// it, 1-event appends to 10,000 streams fell from 10,500 to 3,600 a
// second within three minutes, each looked up, Session 16).
type idFilter struct {
	cur, prev   int64 // bucket numbers; prev -1 when none
	curF, prevF *growingBloom
	capacity    uint
}

// newIDFilter returns an empty filter for bucket cur (and prev), each
// sized for capacity ids at first (they grow: growingBloom).
func newIDFilter(cur, prev int64, capacity int) *idFilter {
	f := &idFilter{cur: cur, prev: prev, capacity: uint(max(capacity, minFilterIDs))}
	f.curF = newGrowingBloom(f.capacity)
	if prev >= 0 {
		f.prevF = newGrowingBloom(f.capacity)
	}
	return f
}

// add records id as committed to bucket b (one of the two the filter
// covers; an id of an older bucket is out of the retry scope and ignored).
func (f *idFilter) add(b int64, id uuid.UUID) {
	switch b {
	case f.cur:
		f.curF.add(id[:])
	case f.prev:
		if f.prevF != nil {
			f.prevF.add(id[:])
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
		f.cur, f.curF = cur, newGrowingBloom(f.capacity)
		return true
	}
	return false
}

// bytes is the memory the filter's bits take.
func (f *idFilter) bytes() int {
	n := f.curF.bytes()
	if f.prevF != nil {
		n += f.prevF.bytes()
	}
	return n
}

// mayHave reports whether any of ids may have been committed to the
// filter's buckets (false: none was).
func (f *idFilter) mayHave(ids []uuid.UUID) bool {
	for _, id := range ids {
		if f.curF.test(id[:]) || f.prevF != nil && f.prevF.test(id[:]) {
			return true
		}
	}
	return false
}

// minFilterIDs is the fewest ids a filter is sized for at first.
const minFilterIDs = 512

// linkFalsePositives is the false positive rate of each link of a
// growingBloom: a filter of n links answers "maybe" for at most n times
// that of the ids it never saw (10 links hold a thousand times the first).
const linkFalsePositives = 0.004

// growingBloom is a Bloom filter that grows with what it is given (a
// scalable Bloom filter): once its last link holds the ids it was sized
// for, the next ids go into a new link of twice the size. A filter sized
// once for a bucket's 50,000 events took 60 KiB a stream; sized for the
// ids a head held and then overfilled, its false positives (each an id
// lookup) would climb towards all.
type growingBloom struct {
	links    []*bloom.BloomFilter
	n, limit uint // ids in the last link, and what it was sized for
}

func newGrowingBloom(capacity uint) *growingBloom {
	return &growingBloom{links: []*bloom.BloomFilter{bloom.NewWithEstimates(capacity, linkFalsePositives)}, limit: capacity}
}

func (g *growingBloom) add(id []byte) {
	if g.n >= g.limit {
		g.limit *= 2
		g.links = append(g.links, bloom.NewWithEstimates(g.limit, linkFalsePositives))
		g.n = 0
	}
	g.links[len(g.links)-1].Add(id)
	g.n++
}

func (g *growingBloom) test(id []byte) bool {
	for _, l := range g.links {
		if l.Test(id) {
			return true
		}
	}
	return false
}

func (g *growingBloom) bytes() int {
	n := 0
	for _, l := range g.links {
		n += int(l.Cap() / 8)
	}
	return n
}

// lowFilter is a Bloom filter of a stream's low ids (streams.LowIDs):
// those of its first LowVersions, which its partitions keep apart from
// stream_ids, in their static row. Once the stream is past LowVersions
// they no longer change, so the filter stays complete for as long as the
// head lives.
type lowFilter struct{ f *bloom.BloomFilter }

// newLowFilter is sized for ids (at least 64), at most a stream's
// LowVersions.
func newLowFilter(ids int) *lowFilter {
	return &lowFilter{bloom.NewWithEstimates(uint(max(ids, 64)), linkFalsePositives)}
}

func (l *lowFilter) add(id uuid.UUID) { l.f.Add(id[:]) }

// mayHave reports whether any of ids may be a low id (false: none is).
func (l *lowFilter) mayHave(ids []uuid.UUID) bool {
	for _, id := range ids {
		if l.f.Test(id[:]) {
			return true
		}
	}
	return false
}

func (l *lowFilter) bytes() int { return int(l.f.Cap() / 8) }
