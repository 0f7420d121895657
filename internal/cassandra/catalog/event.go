package catalog

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

const (
	// schema/migrations/0008_event_id_commits.cql: event_id_commits, a
	// row per id and commit (the log row, seq) that holds it.
	cqlLookupID = `SELECT seq, time FROM event_id_commits WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`
	// schema/migrations/0002_discovery.cql, 0003_event_index_seq.cql:
	// event_index, written by servers before 0008, a row per id and
	// partition. A row names the log row of the event's commit (seq), or,
	// written by a server before 0003, the stream and version.
	cqlLookupIDOld = `SELECT stream, version, seq FROM event_index WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`
)

// lookupConcurrency bounds the partition reads of one lookup by id.
const lookupConcurrency = 32

// hit is a commit an index row names as holding an event with the id: a
// log row (shard, seq), with its commit time (zero until its log row or
// event is read, for rows of event_index), or, for a row written before
// 0003, the event's stream and version (seq -1).
type hit struct {
	shard int
	seq   int64
	time  time.Time
	locs  []Location // the row's events with the id, once read
	ev    *log.RecordedEvent
}

// oldOrder orders two hits of rows written before 0003 (seq -1), which
// name no log row: of one shard and one commit time, they tie on every
// other key, and are ordered by their events' streams, then versions, so
// that every lookup gives the same answer (not whichever row's read came
// back first). The others never tie: a log row is one hit.
func (h *hit) oldOrder(o *hit) int {
	key := func(h *hit) (log.StreamID, int64) {
		if h.ev == nil {
			return "", 0 // not visible, or not there: skipped in any order
		}
		return h.ev.Stream, h.ev.Version
	}
	hs, hv := key(h)
	ks, kv := key(o)
	return cmp.Or(cmp.Compare(hs, ks), cmp.Compare(hv, kv))
}

// EventByID implements log.Catalog.EventByID. A UUIDv7 id is looked up in
// the partitions of the minute it carries (a read per shard, slot and
// table); any other id in slot 0 of the minutes it may be filed under if
// committed within the last UntimedWindow (untimedMinutes).
//
// Ids are unique within a stream only, so an id may be in several
// streams, of one shard or several, committed together or apart: every
// commit of the id is a row of event_id_commits (event_index, of servers
// before 0008, is read too). Of the events with the id in a stream
// visible passes, the lookup answers the earliest committed: by commit
// time, then shard, then log row (within a shard, log order is commit
// order, and commit times are monotone), then its order in the commit
// (rows before 0003, which name no log row: stream, then version). So
// the answer to a caller does not change when the id is appended to
// other streams later (of another shard: unless its owner's clock is
// behind by more than the time between the commits). The scope is
// checked before a stream is read, and log rows are read in that order
// only until one holds a visible event.
func (c *Catalog) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	if visible == nil {
		visible = func(log.StreamID) bool { return true }
	}
	hits, err := c.idHits(ctx, id)
	if err != nil {
		return log.RecordedEvent{}, err
	}
	if err := c.resolveOld(ctx, id, hits, visible); err != nil {
		return log.RecordedEvent{}, err
	}
	slices.SortFunc(hits, func(a, b *hit) int {
		return cmp.Or(a.time.Compare(b.time), cmp.Compare(a.shard, b.shard), cmp.Compare(a.seq, b.seq), a.oldOrder(b))
	})
	for _, h := range hits {
		if h.ev != nil { // a row before 0003, visible and read
			return *h.ev, nil
		}
		if h.locs == nil && h.seq >= 0 {
			if h.locs, err = c.o.Locate(ctx, h.shard, h.seq, id); err != nil {
				return log.RecordedEvent{}, err
			}
		}
		for _, l := range h.locs {
			// The scope is checked before the stream is read: a stream
			// the caller may not read is never touched.
			if !visible(l.Stream) {
				continue
			}
			ev, ok, err := c.o.ReadEvent(ctx, l.Stream, l.Version, id)
			if err != nil {
				return log.RecordedEvent{}, err
			}
			if ok && ev.ID == id {
				return ev, nil
			}
		}
	}
	return log.RecordedEvent{}, log.ErrEventNotFound
}

// idHits reads the index rows of id in every partition it may be filed
// in, of both tables: the commits that hold it, one hit per log row.
func (c *Catalog) idHits(ctx context.Context, id uuid.UUID) ([]*hit, error) {
	var (
		minutes = make([][]int64, c.o.Shards) // by shard
		slots   = 1
	)
	if m, timed := Minute(id, time.Time{}); timed {
		for s := range minutes {
			minutes[s] = []int64{m}
		}
		slots = Slots
	} else {
		var logTimes []time.Time
		if c.o.LogTimes != nil {
			var err error
			if logTimes, err = c.o.LogTimes(ctx); err != nil {
				return nil, err
			}
		}
		now := c.o.Now()
		if c.o.Clock != nil {
			now = c.o.Clock(ctx)
		}
		for s := range minutes {
			var lt time.Time
			if s < len(logTimes) {
				lt = logTimes[s]
			}
			minutes[s] = untimedMinutes(now.UnixMilli()/60_000, lt)
		}
	}
	type logRow struct {
		shard int
		seq   int64
	}
	var (
		mu     sync.Mutex
		bySeq  = map[logRow]*hit{}
		byLoc  = map[Location]bool{}
		hits   []*hit
		jobs   []func(context.Context) error
		record = func(h *hit) { // under mu
			if h.seq < 0 {
				if !byLoc[h.locs[0]] {
					byLoc[h.locs[0]] = true
					hits = append(hits, h)
				}
				return
			}
			k := logRow{h.shard, h.seq}
			if old := bySeq[k]; old != nil {
				if old.time.IsZero() {
					old.time = h.time
				}
				return
			}
			bySeq[k] = h
			hits = append(hits, h)
		}
	)
	for shard, ms := range minutes {
		for _, m := range ms {
			for slot := range slots {
				jobs = append(jobs, func(context.Context) error {
					iter := c.session.Query(cqlLookupID, shard, m, slot, [16]byte(id)).WithContext(ctx).Idempotent(true).Iter()
					var (
						seq int64
						at  time.Time
					)
					for iter.Scan(&seq, &at) {
						mu.Lock()
						record(&hit{shard: shard, seq: seq, time: at})
						mu.Unlock()
					}
					return cql.ReadErr("look up event id", iter.Close())
				}, func(context.Context) error {
					var (
						stream  string
						version int64
						seq     *int64
					)
					err := c.session.Query(cqlLookupIDOld, shard, m, slot, [16]byte(id)).WithContext(ctx).Idempotent(true).Scan(&stream, &version, &seq)
					switch {
					case errors.Is(err, gocql.ErrNotFound):
						return nil
					case err != nil:
						return cql.ReadErr("look up event id", err)
					}
					mu.Lock()
					defer mu.Unlock()
					if stream != "" { // a row before 0003
						record(&hit{shard: shard, seq: -1, locs: []Location{{Stream: log.StreamID(stream), Version: version}}})
					}
					if seq != nil { // and a later commit's, from 0003 on
						record(&hit{shard: shard, seq: *seq})
					}
					return nil
				})
			}
		}
	}
	if err := run(ctx, jobs, lookupConcurrency); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Some commits of the id may be missed: the earliest found
		// might not be the earliest.
		return nil, err
	}
	return hits, nil
}

// resolveOld finds the commit times of the hits that event_index gave
// without one: it reads the log row each names (which lists the events
// with the id), or, for a row before 0003, the event itself if its stream
// is visible (dropping the hit if not, or if the event is not there).
func (c *Catalog) resolveOld(ctx context.Context, id uuid.UUID, hits []*hit, visible func(log.StreamID) bool) error {
	var jobs []func(context.Context) error
	for _, h := range hits {
		switch {
		case !h.time.IsZero():
		case h.seq >= 0:
			jobs = append(jobs, func(context.Context) error {
				locs, err := c.o.Locate(ctx, h.shard, h.seq, id)
				h.locs = locs
				if len(locs) > 0 {
					h.time = locs[0].Time
				}
				if h.locs == nil {
					h.locs = []Location{} // read: nothing there
				}
				return err
			})
		case visible(h.locs[0].Stream):
			jobs = append(jobs, func(context.Context) error {
				l := h.locs[0]
				ev, ok, err := c.o.ReadEvent(ctx, l.Stream, l.Version, id)
				h.locs = []Location{}
				if ok && ev.ID == id {
					h.ev, h.time = &ev, ev.Time
					h.locs = nil
				}
				return err
			})
		default:
			h.locs = []Location{}
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	return run(ctx, jobs, lookupConcurrency)
}

// untimedMinutes are the minutes an id that is not a UUIDv7 may be filed
// under if it was committed within UntimedWindow, newest first: the
// window before now, the minute of Cassandra's clock (Options.Clock),
// where its fill files it, and the window before logTime, the shard's log
// time (zero: unknown), where servers before that filed it (its commit
// minute, by its owner's clock), each with one minute ahead. Owners'
// clocks may be hours apart, and a shard's log time jumps by the
// difference when it changes owner: filed under its commit minute, an
// event committed before such a change was searched for in the hours
// after it, and not found.
func untimedMinutes(now int64, logTime time.Time) []int64 {
	window := int64(UntimedWindow.Minutes())
	var out []int64
	seen := map[int64]bool{}
	add := func(m int64) {
		for t := m + 1; t >= m-window; t-- {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	if !logTime.IsZero() {
		add(logTime.UnixMilli() / 60_000)
	}
	add(now)
	return out
}
