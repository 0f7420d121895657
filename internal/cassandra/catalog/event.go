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

// lookupConcurrency bounds the partition reads of one lookup by id, and
// makes its waves: the minutes of one wave hold at most this many
// partitions (a minute with more is a wave of its own).
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
	old   Location // a row before 0003: the stream and version it names
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

// part is one index partition a lookup reads: (shard, minute, slot) of
// event_id_commits, or of event_index (old).
type part struct {
	shard, slot int
	old         bool
}

// minuteRead is the partitions of one minute a lookup reads, and the
// hits they hold, one per log row (and one per event of a row before
// 0003).
type minuteRead struct {
	minute int64
	parts  []part
	hits   []*hit
}

// logRow is a commit: a shard's log row.
type logRow struct {
	shard int
	seq   int64
}

// EventByID implements log.Catalog.EventByID. A UUIDv7 id is looked up in
// the partitions of the minute it carries (a read per shard and slot);
// any other id in slot 0 of each shard at the minutes it may be filed
// under if committed within the last UntimedWindow (untimedMinutes).
// event_index, of servers before 0008, is read too where it may hold the
// id (Options.OldIndex).
//
// Ids are unique within a stream only, so an id may be in several
// streams, of one shard or several, committed together or apart: every
// commit of the id is a row of event_id_commits. The lookup answers the
// first event with the id, in a stream visible passes, in this order:
// by the minute its index rows are filed under, newest first (one minute
// for a UUIDv7 id); within a minute, the earliest committed: by commit
// time, then shard, then log row (within a shard, log order is commit
// order, and commit times are monotone), then its order in the commit
// (rows before 0003, which name no log row: stream, then version). So a
// UUIDv7 id's answer to a caller does not change when the id is appended
// to other streams later (of another shard: unless its owner's clock is
// behind by more than the time between the commits); another id's does
// when the later commit is filed under a later minute.
//
// The minutes are read in waves, newest first, each of at most
// lookupConcurrency partitions (at least one minute), in parallel: the
// first wave that has a visible event ends the lookup, which reads no
// further wave. Within a wave, a minute's log rows are read in its order
// only until one holds a visible event, and the scope is checked before
// a stream is read. The answer for a given state of the index is the
// same at every lookup: the waves only decide how much is read.
//
// A log row that fails its check names no stream that can be trusted: for
// a caller that may read every stream (visible nil) it is the
// *log.CorruptError, as a feed read meeting it would be; for the others it
// holds no visible event (skipped, logged, and reported to ctx's
// log.WithSkippedCorrupt function), so that an id they cannot
// see is not found whether its row is sound or corrupt.
func (c *Catalog) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	scoped := visible != nil
	if !scoped {
		visible = func(log.StreamID) bool { return true }
	}
	minutes, err := c.plan(ctx, id)
	if err != nil {
		return log.RecordedEvent{}, err
	}
	var (
		located = map[logRow]bool{}   // read in an earlier minute: nothing visible there
		oldSeen = map[Location]bool{} // rows before 0003, of an earlier minute
	)
	for len(minutes) > 0 {
		n, parts := 1, len(minutes[0].parts)
		for n < len(minutes) && parts+len(minutes[n].parts) <= lookupConcurrency {
			parts += len(minutes[n].parts)
			n++
		}
		wave := minutes[:n]
		minutes = minutes[n:]
		if err := c.readWave(ctx, id, wave); err != nil {
			return log.RecordedEvent{}, err
		}
		for _, m := range wave {
			hits := slices.DeleteFunc(m.hits, func(h *hit) bool {
				if h.seq < 0 {
					return oldSeen[h.old]
				}
				return located[logRow{h.shard, h.seq}]
			})
			ev, ok, err := c.first(ctx, id, hits, visible, scoped)
			if err != nil {
				return log.RecordedEvent{}, err
			}
			if ok {
				return ev, nil
			}
			for _, h := range hits {
				if h.seq < 0 {
					oldSeen[h.old] = true
				} else {
					located[logRow{h.shard, h.seq}] = true
				}
			}
		}
	}
	return log.RecordedEvent{}, log.ErrEventNotFound
}

// first resolves hits, one minute's, and returns the first visible
// event of theirs in the lookup's order (EventByID).
func (c *Catalog) first(ctx context.Context, id uuid.UUID, hits []*hit, visible func(log.StreamID) bool, scoped bool) (log.RecordedEvent, bool, error) {
	if len(hits) == 0 {
		return log.RecordedEvent{}, false, nil
	}
	if err := c.resolveOld(ctx, id, hits, visible, scoped); err != nil {
		return log.RecordedEvent{}, false, err
	}
	slices.SortFunc(hits, func(a, b *hit) int {
		return cmp.Or(a.time.Compare(b.time), cmp.Compare(a.shard, b.shard), cmp.Compare(a.seq, b.seq), a.oldOrder(b))
	})
	for _, h := range hits {
		if h.ev != nil { // a row before 0003, visible and read
			return *h.ev, true, nil
		}
		if h.locs == nil && h.seq >= 0 {
			var err error
			if h.locs, err = c.locate(ctx, h.shard, h.seq, id, scoped); err != nil {
				return log.RecordedEvent{}, false, err
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
				return log.RecordedEvent{}, false, err
			}
			if ok && ev.ID == id {
				return ev, true, nil
			}
		}
	}
	return log.RecordedEvent{}, false, nil
}

// locate is Options.Locate, but a log row that fails its check holds no
// event for a scoped lookup (one whose caller may not read every stream):
// which streams it holds is not known, and the caller must not learn that
// an id is in a stream it cannot read.
func (c *Catalog) locate(ctx context.Context, shard int, seq int64, id uuid.UUID, scoped bool) ([]Location, error) {
	locs, err := c.o.Locate(ctx, shard, seq, id)
	var ce *log.CorruptError
	if scoped && errors.As(err, &ce) {
		c.o.Logger.ErrorContext(ctx, "corrupt log record left out of a scoped lookup by id", append(ce.Attrs(), "event_id", id.String(), "error", err)...)
		log.SkippedCorrupt(ctx, ce) // counted by the caller
		return []Location{}, nil
	}
	return locs, err
}

// plan returns the minutes a lookup of id reads, in the lookup's order,
// each with its partitions.
func (c *Catalog) plan(ctx context.Context, id uuid.UUID) ([]*minuteRead, error) {
	if m, timed := Minute(id, time.Time{}); timed {
		old := c.readOld(true, time.Time{})
		mr := &minuteRead{minute: m}
		for shard := range c.o.Shards {
			for slot := range Slots {
				mr.parts = append(mr.parts, part{shard: shard, slot: slot})
				if old {
					mr.parts = append(mr.parts, part{shard: shard, slot: slot, old: true})
				}
			}
		}
		return []*minuteRead{mr}, nil
	}
	now := c.o.Now()
	if c.o.Clock != nil {
		now = c.o.Clock(ctx)
	}
	old := c.readOld(false, now)
	// event_id_commits' rows are filed by Cassandra's clock (Options.Clock),
	// in the window before now; only event_index's rows of servers before
	// that were filed by their commit minute, which the shard's log time
	// places. So the log times, a read of every shard's log end, are read
	// only when event_index is (or when there is no Clock: rows are then
	// filed by commit time).
	byLogTime := c.o.Clock == nil
	var logTimes []time.Time
	if c.o.LogTimes != nil && (old || byLogTime) {
		var err error
		if logTimes, err = c.o.LogTimes(ctx); err != nil {
			return nil, err
		}
	}
	byMinute := map[int64]*minuteRead{}
	var out []*minuteRead
	add := func(m int64, p part) {
		mr := byMinute[m]
		if mr == nil {
			mr = &minuteRead{minute: m}
			byMinute[m] = mr
			out = append(out, mr)
		}
		mr.parts = append(mr.parts, p)
	}
	for shard := range c.o.Shards {
		var lt time.Time
		if shard < len(logTimes) {
			lt = logTimes[shard]
		}
		newLT := time.Time{}
		if byLogTime {
			newLT = lt
		}
		for _, m := range untimedMinutes(now.UnixMilli()/60_000, newLT) {
			add(m, part{shard: shard})
		}
		if old {
			for _, m := range untimedMinutes(now.UnixMilli()/60_000, lt) {
				add(m, part{shard: shard, old: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b *minuteRead) int { return cmp.Compare(b.minute, a.minute) }) // newest first
	return out, nil
}

// readWave reads the partitions of wave's minutes in parallel, and files
// their hits by minute; the first error cancels the other reads.
func (c *Catalog) readWave(ctx context.Context, id uuid.UUID, wave []*minuteRead) error {
	var (
		mu   sync.Mutex
		jobs []func(context.Context) error
	)
	for _, mr := range wave {
		var (
			bySeq  = map[logRow]*hit{}
			byLoc  = map[Location]bool{}
			record = func(h *hit) { // under mu
				if h.seq < 0 {
					if !byLoc[h.old] {
						byLoc[h.old] = true
						mr.hits = append(mr.hits, h)
					}
					return
				}
				k := logRow{h.shard, h.seq}
				if had := bySeq[k]; had != nil {
					if had.time.IsZero() {
						had.time = h.time
					}
					return
				}
				bySeq[k] = h
				mr.hits = append(mr.hits, h)
			}
		)
		for _, p := range mr.parts {
			if !p.old {
				jobs = append(jobs, func(ctx context.Context) error {
					iter := c.session.Query(cqlLookupID, p.shard, mr.minute, p.slot, [16]byte(id)).WithContext(ctx).Idempotent(true).Iter()
					var (
						seq int64
						at  time.Time
					)
					for iter.Scan(&seq, &at) {
						mu.Lock()
						record(&hit{shard: p.shard, seq: seq, time: at})
						mu.Unlock()
					}
					return cql.ReadErr("look up event id", iter.Close())
				})
				continue
			}
			jobs = append(jobs, func(ctx context.Context) error {
				var (
					stream  string
					version int64
					seq     *int64
				)
				err := c.session.Query(cqlLookupIDOld, p.shard, mr.minute, p.slot, [16]byte(id)).WithContext(ctx).Idempotent(true).Scan(&stream, &version, &seq)
				switch {
				case errors.Is(err, gocql.ErrNotFound):
					return nil
				case err != nil:
					return cql.ReadErr("look up event id", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if stream != "" { // a row before 0003
					l := Location{Stream: log.StreamID(stream), Version: version}
					record(&hit{shard: p.shard, seq: -1, old: l, locs: []Location{l}})
				}
				if seq != nil { // and a later commit's, from 0003 on
					record(&hit{shard: p.shard, seq: *seq})
				}
				return nil
			})
		}
	}
	if err := run(ctx, jobs, lookupConcurrency); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Some commits of the id may be missed: the first found might
		// not be the first.
		return err
	}
	return nil
}

// resolveOld finds the commit times of the hits that event_index gave
// without one: it reads the log row each names (which lists the events
// with the id), or, for a row before 0003, the event itself if its stream
// is visible (dropping the hit if not, or if the event is not there).
func (c *Catalog) resolveOld(ctx context.Context, id uuid.UUID, hits []*hit, visible func(log.StreamID) bool, scoped bool) error {
	var jobs []func(context.Context) error
	for _, h := range hits {
		switch {
		case !h.time.IsZero():
		case h.seq >= 0:
			jobs = append(jobs, func(ctx context.Context) error {
				locs, err := c.locate(ctx, h.shard, h.seq, id, scoped)
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
			jobs = append(jobs, func(ctx context.Context) error {
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
