package catalog

import (
	"context"
	"errors"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// schema/migrations/0002_discovery.cql: event_index.
const cqlLookupID = `SELECT stream, version FROM event_index WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`

// lookupConcurrency bounds the partition reads of one lookup by id.
const lookupConcurrency = 32

// errFound ends a lookup's other reads once one found the id.
var errFound = errors.New("found")

// EventByID implements log.Catalog.EventByID. A UUIDv7 id is looked up in
// the partitions of the minute it carries (a read per shard and slot); any
// other id in slot 0 of the commit minutes of the last UntimedWindow.
func (c *Catalog) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	var (
		minutes []int64
		slots   = 1
	)
	if m, timed := Minute(id, c.o.Now()); timed {
		minutes, slots = []int64{m}, Slots
	} else {
		// Newest first, one minute ahead for the clocks of other owners.
		for t := m + 1; t >= m-int64(UntimedWindow.Minutes()); t-- {
			minutes = append(minutes, t)
		}
	}
	var (
		stream  string
		version int64
	)
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	var jobs []func() error
	found := make(chan [2]any, 1)
	for _, m := range minutes {
		for shard := range c.o.Shards * slots {
			shard, slot := shard/slots, shard%slots
			jobs = append(jobs, func() error {
				var (
					st string
					v  int64
				)
				err := c.session.Query(cqlLookupID, shard, m, slot, [16]byte(id)).WithContext(ctx2).Idempotent(true).Scan(&st, &v)
				switch {
				case err == nil:
					select {
					case found <- [2]any{st, v}:
					default:
					}
					cancel()
					return errFound
				case ctx2.Err() != nil:
					return errFound
				case errors.Is(err, gocql.ErrNotFound):
					return nil
				}
				return cql.ReadErr("look up event id", err)
			})
		}
	}
	err := run(jobs, lookupConcurrency)
	select {
	case f := <-found:
		stream, version = f[0].(string), f[1].(int64)
	default:
		if err != nil && !errors.Is(err, errFound) {
			return log.RecordedEvent{}, err
		}
		if ctx.Err() != nil {
			return log.RecordedEvent{}, ctx.Err()
		}
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	if visible != nil && !visible(log.StreamID(stream)) {
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	ev, ok, err := c.o.ReadEvent(ctx, log.StreamID(stream), version, id)
	if err != nil {
		return log.RecordedEvent{}, err
	}
	if !ok || ev.ID != id {
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	return ev, nil
}
