package catalog

import (
	"context"
	"errors"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// schema/migrations/0002_discovery.cql, 0003_event_index_seq.cql:
// event_index. A row names the log row of the event's commit (seq), or,
// written by a server before 0003, the stream and version.
const cqlLookupID = `SELECT stream, version, seq FROM event_index WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`

// lookupConcurrency bounds the partition reads of one lookup by id.
const lookupConcurrency = 32

// errFound ends a lookup's other reads once one found the id.
var errFound = errors.New("found")

// EventByID implements log.Catalog.EventByID. A UUIDv7 id is looked up in
// the partitions of the minute it carries (a read per shard and slot); any
// other id in slot 0 of the minutes it may be filed under if committed
// within the last UntimedWindow (untimedMinutes). Ids are unique within a
// stream only, so an id may have index rows in several shards, and a log
// row may hold it in several streams: the lookup ends at the first event
// in a stream visible passes, not at the first row (which named, as often
// as not, another stream of the same id, and a key that may read only
// this one was told 404).
func (c *Catalog) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
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
				return log.RecordedEvent{}, err
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
	if visible != nil { // asked from the lookups' goroutines
		var mu sync.Mutex
		callers := visible
		visible = func(s log.StreamID) bool {
			mu.Lock()
			defer mu.Unlock()
			return callers(s)
		}
	}
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	var jobs []func() error
	found := make(chan Location, 1)
	// The newest minutes of every shard first: the id is most likely there.
	for i, more := 0, true; more; i++ {
		more = false
		for shard, ms := range minutes {
			if i >= len(ms) {
				continue
			}
			more = true
			m := ms[i]
			for slot := range slots {
				jobs = append(jobs, func() error {
					var (
						stream  string
						version int64
						seq     int64
					)
					err := c.session.Query(cqlLookupID, shard, m, slot, [16]byte(id)).WithContext(ctx2).Idempotent(true).Scan(&stream, &version, &seq)
					switch {
					case ctx2.Err() != nil:
						return errFound
					case errors.Is(err, gocql.ErrNotFound):
						return nil
					case err != nil:
						return cql.ReadErr("look up event id", err)
					}
					locs := []Location{{Stream: log.StreamID(stream), Version: version}}
					if stream == "" { // a row naming the log row of the commit
						if locs, err = c.o.Locate(ctx2, shard, seq, id); err != nil {
							if ctx2.Err() != nil {
								return errFound
							}
							return err
						}
					}
					for _, l := range locs {
						// The scope is checked before the stream is read:
						// a stream the caller may not read is never
						// touched.
						if visible == nil || visible(l.Stream) {
							select {
							case found <- l:
							default:
							}
							cancel()
							return errFound
						}
					}
					return nil
				})
			}
		}
	}
	err := run(jobs, lookupConcurrency)
	var (
		stream  log.StreamID
		version int64
	)
	select {
	case l := <-found:
		stream, version = l.Stream, l.Version
	default:
		if err != nil && !errors.Is(err, errFound) {
			return log.RecordedEvent{}, err
		}
		if ctx.Err() != nil {
			return log.RecordedEvent{}, ctx.Err()
		}
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	ev, ok, err := c.o.ReadEvent(ctx, stream, version, id)
	if err != nil {
		return log.RecordedEvent{}, err
	}
	if !ok || ev.ID != id {
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	return ev, nil
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
