package sequencer

import (
	"container/list"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
)

// head is what a shard's owner knows of one stream: its version and newest
// bucket as committed, and the client ids committed to it recently.
type head struct {
	stream  log.StreamID
	version int64
	bucket  streams.Bucket // newest bucket; Number -1 when there is none
	created bool           // the newest bucket holds events
	prev    int64          // the bucket before it, -1 when none
	// ids maps client ids to their version and commit time. It holds every
	// id this owner committed to the stream and has not yet written to its
	// partitions, the others it committed or loaded until the map passes
	// its limit (pruneIDs), and, when idsComplete, every id stored in the
	// current and previous bucket; otherwise lookups fill it in per append.
	ids         map[uuid.UUID]idAt
	idsComplete bool
	// filter, when set, has every client id committed to the current and
	// previous bucket (idfilter.go): made when a complete id set starts
	// being pruned, kept through the stream's bucket changes.
	filter *idFilter
	// low, when set, has every client id of the stream's first
	// streams.LowVersions (lowFilter): a lookup whose ids it has not seen
	// reads stream_ids only, not the partitions' static row, which cost
	// Cassandra about a millisecond once it held 1,024 ids.
	low *lowFilter
	// recent, when set, has the ids of the stream's newest versions
	// (recentIDs): made at its first exact-version conflict checked
	// against the stream, for at most maxRecent heads a shard.
	recent *recentIDs
	// pruneAt, when above the limit, is the size at which pruneIDs looks
	// again: twice what the last pass could not drop (ids not yet
	// filled), so a stream with more unfilled ids than the limit is not
	// scanned on every commit.
	pruneAt int
	// lastSeq is the last log seq that touched the stream: the head may be
	// evicted (and later reloaded from the stream partitions) only once
	// that seq is filled.
	lastSeq int64
	elem    *list.Element
}

type idAt struct {
	version int64
	// at is the commit time in Unix nanoseconds (at): an int, not a
	// time.Time, whose location pointer made the garbage collector scan
	// every entry of every head's map (up to a million ids), on ingest and
	// on every feed read of an instance that ingests.
	at int64
}

func newIDAt(version int64, t time.Time) idAt { return idAt{version: version, at: t.UnixNano()} }

// time is when the id was committed.
func (a idAt) time() time.Time { return time.Unix(0, a.at) }

// buckets is where the stream's recent ids are recorded: the current and
// previous bucket.
func (h *head) buckets() []int64 { return bucketsOf(h.bucket.Number, h.prev) }

func bucketsOf(cur, prev int64) []int64 {
	switch {
	case cur < 0:
		return nil
	case prev >= 0:
		return []int64{cur, prev}
	}
	return []int64{cur}
}

// pruneIDs drops ids older than the window once the map has grown past
// limit (but, while the head is complete, not those at or below
// streams.LowVersions). If that is not enough, it drops the ids committed
// before filledBefore too: those are in the stream partitions, where the lookup
// of a head that is not complete finds them if they are in the current or
// previous bucket — the retry window the README promises; an id further
// back is forgotten, as a reloaded head would forget it. The ids
// committed since must stay: a lookup cannot see them until they are
// filled. Without this a stream that took a million events within the
// window held a million ids.
func (h *head) pruneIDs(now time.Time, window time.Duration, limit int, filledBefore time.Time, mkFilter func(*head)) {
	if len(h.ids) <= max(limit, h.pruneAt) {
		return
	}
	defer func() {
		h.pruneAt = 0
		if len(h.ids) > limit {
			h.pruneAt = 2 * len(h.ids)
		}
	}()
	for id, a := range h.ids {
		// A head that claims every id keeps those of the stream's first
		// versions past the window: their chunks keep them, so a retry is
		// recognised then (streams.LowVersions), and a head that dropped
		// them would take it for a new append.
		if now.Sub(a.time()) > window && !(h.idsComplete && a.version <= streams.LowVersions) {
			delete(h.ids, id)
		}
	}
	if len(h.ids) <= limit {
		return
	}
	// Still too many: stop claiming completeness (appends with ids are
	// looked up, unless the filter says none was seen) and keep only what
	// is not yet filled.
	if h.idsComplete && h.filter == nil && mkFilter != nil {
		mkFilter(h)
	}
	h.idsComplete = false
	// Into a new map: a Go map keeps its peak size after deletes.
	kept := make(map[uuid.UUID]idAt)
	for id, a := range h.ids {
		if !a.time().Before(filledBefore) {
			kept[id] = a
		}
	}
	h.ids = kept
}

// heads is a shard's LRU of heads, used only by its commit goroutine.
type heads struct {
	m     map[log.StreamID]*head
	lru   list.List // front: most recent
	limit int
	// ids counts the client ids the heads hold; past idBudget the least
	// recently used heads whose commits are all filled give theirs up.
	ids      int
	idBudget int
	// filterBytes is what the heads' id filters take, at most
	// filterBudget (past it no new filter is made, and one that grows
	// past it is dropped).
	filterBytes, filterBudget int
	// lowBytes is what the heads' low filters take, at most lowBudget:
	// apart from filterBudget, since the heads that need one most are
	// those whose filter that budget dropped.
	lowBytes, lowBudget int
	// recent counts the heads with recent ids (recentIDs), at most
	// maxRecent a shard: a stream's first checked conflict gives its head
	// some, and over many streams every head would hold 1 KB.
	recent int
}

// filterBytesPerBudgetID is the filter bytes a shard may take per id of
// its id budget. A filter takes 2-3 bytes an id (idfilter.go: 0.4 % false
// positives a link, links growing by doubling), a head's id map some 50:
// the filters may know about thirty times the ids the maps hold, in about
// one and a half times their memory. Once the filters are full, an append
// to a stream whose ids are in neither is looked up, which cost a server
// taking 1-event appends to 10,000 streams about half its rate
// (docs/benchmarks.md, Session 17): the filters take most of the memory,
// since a retry, the only append a filter sends to a lookup that a map
// would not, is rare.
const filterBytesPerBudgetID = 80

// lowBytesPerBudgetID is the low-filter bytes a shard may take per id of
// its id budget (at least 1 MiB a shard): with the default budget and up
// to 16 shards, 16 MB an instance of filters of about 1.5 KB (a stream's
// 1,024 low ids), some 10,000 streams' worth. A filter stays until its
// head is evicted.
const lowBytesPerBudgetID = 32

func newHeads(limit, idBudget int) *heads {
	return &heads{m: make(map[log.StreamID]*head), limit: limit, idBudget: idBudget,
		filterBudget: max(1<<20, filterBytesPerBudgetID*idBudget),
		lowBudget:    max(1<<20, lowBytesPerBudgetID*idBudget)}
}

// makeFilter gives h a filter of the ids it holds, which are every id of
// its current and previous bucket (h.idsComplete), unless the shard's
// filters take filterBudget already.
func (hs *heads) makeFilter(h *head) {
	f := newIDFilter(h.bucket.Number, h.prev, 2*len(h.ids))
	if hs.filterBytes+f.bytes() > hs.filterBudget || h.bucket.Number < 0 {
		return
	}
	for id, a := range h.ids {
		if a.version >= h.bucket.FirstVersion {
			f.add(h.bucket.Number, id)
		} else {
			f.add(h.prev, id)
		}
	}
	h.filter = f
	hs.filterBytes += f.bytes()
}

// filterGrew accounts for h's filter having changed size from before
// bytes, dropping it when the shard's filters pass their budget.
func (hs *heads) filterGrew(h *head, before int) {
	if h.filter == nil {
		return
	}
	hs.filterBytes += h.filter.bytes() - before
	if hs.filterBytes > hs.filterBudget {
		hs.dropFilter(h)
	}
}

// dropFilter removes h's filter.
func (hs *heads) dropFilter(h *head) {
	if h.filter != nil {
		hs.filterBytes -= h.filter.bytes()
		h.filter = nil
	}
}

// lowRoom reports whether a low filter of a stream's LowVersions ids
// fits the budget: a lookup that would only throw its filter away reads
// the few low ids it asks for instead of all of them.
func (hs *heads) lowRoom() bool {
	return hs.lowBytes+lowFilterBytes <= hs.lowBudget
}

// lowFilterBytes is what a filter of LowVersions ids takes.
var lowFilterBytes = newLowFilter(streams.LowVersions).bytes()

// setLow gives h the low filter f unless the shard's low filters would
// pass their budget with it.
func (hs *heads) setLow(h *head, f *lowFilter) {
	if h.low != nil || hs.lowBytes+f.bytes() > hs.lowBudget {
		return
	}
	h.low = f
	hs.lowBytes += f.bytes()
}

// peek is get without marking the head used: a batch's later looks at
// a head its first one marked.
func (hs *heads) peek(stream log.StreamID) *head { return hs.m[stream] }

func (hs *heads) get(stream log.StreamID) *head {
	h := hs.m[stream]
	if h != nil {
		hs.lru.MoveToFront(h.elem)
	}
	return h
}

func (hs *heads) put(h *head) {
	h.elem = hs.lru.PushFront(h)
	hs.m[h.stream] = h
	hs.ids += len(h.ids)
}

// evict drops least recently used heads beyond the limit whose commits are
// all filled (filled is the shard's fill watermark), calling gone for each.
// Then, while the heads hold more ids than the budget, the least recently
// used of those heads drop their ids: every one of them is in the stream
// partitions, where a head that is not complete looks its appends' ids up
// (as a reloaded head would), unless a filter of them (made here if the
// head held them all) says an append's ids are new. Without this, heads
// of streams that took 100-event appends held a hundred ids each, 20,000
// heads a shard.
func (hs *heads) evict(filled int64, gone func(log.StreamID)) {
	e := hs.lru.Back()
	for len(hs.m) > hs.limit && e != nil {
		prev := e.Prev()
		if h := e.Value.(*head); h.lastSeq <= filled {
			hs.lru.Remove(e)
			delete(hs.m, h.stream)
			hs.ids -= len(h.ids)
			hs.dropFilter(h)
			if h.low != nil {
				hs.lowBytes -= h.low.bytes()
			}
			if h.recent != nil {
				hs.recent--
			}
			gone(h.stream)
		}
		e = prev
	}
	for e := hs.lru.Back(); hs.ids > hs.idBudget && e != nil; e = e.Prev() {
		if h := e.Value.(*head); h.lastSeq <= filled && len(h.ids) > 0 {
			if h.idsComplete && h.filter == nil {
				// A filter of them still tells a new id from a retry
				// without a lookup.
				hs.makeFilter(h)
			}
			hs.ids -= len(h.ids)
			h.ids = make(map[uuid.UUID]idAt)
			h.idsComplete, h.pruneAt = false, 0
		}
	}
}
