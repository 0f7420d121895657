package catalog

import (
	"context"
	"errors"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// schema/migrations/0002_discovery.cql, 0003_event_index_seq.cql:
// event_index. A row names the log row of the event's commit (seq), or,
// written by a server before 0003, the stream and version.
const cqlLookupID = `SELECT stream, version, seq FROM event_index WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`

// hit is what one index row says of an id.
type hit struct {
	shard   int
	stream  string
	version int64
	seq     int64
}

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
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	var jobs []func() error
	found := make(chan hit, 1)
	for _, m := range minutes {
		for shard := range c.o.Shards * slots {
			shard, slot := shard/slots, shard%slots
			jobs = append(jobs, func() error {
				h := hit{shard: shard}
				err := c.session.Query(cqlLookupID, shard, m, slot, [16]byte(id)).WithContext(ctx2).Idempotent(true).Scan(&h.stream, &h.version, &h.seq)
				switch {
				case err == nil:
					select {
					case found <- h:
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
	var (
		stream  log.StreamID
		version int64
	)
	select {
	case h := <-found:
		stream, version = log.StreamID(h.stream), h.version
		if h.stream == "" {
			var ok bool
			stream, version, ok, err = c.o.Locate(ctx, h.shard, h.seq, id)
			if err != nil {
				return log.RecordedEvent{}, err
			}
			if !ok {
				return log.RecordedEvent{}, log.ErrEventNotFound
			}
		}
	default:
		if err != nil && !errors.Is(err, errFound) {
			return log.RecordedEvent{}, err
		}
		if ctx.Err() != nil {
			return log.RecordedEvent{}, ctx.Err()
		}
		return log.RecordedEvent{}, log.ErrEventNotFound
	}
	if visible != nil && !visible(stream) {
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
