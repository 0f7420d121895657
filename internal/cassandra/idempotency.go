package cassandra

import (
	"context"
	"fmt"
	"slices"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

const (
	// schema/schema.cql: event_ids.
	cqlRecordID = `INSERT INTO event_ids (stream, bucket, id, base, position) VALUES (?, ?, ?, ?, ?) USING TTL ?`
	// cqlFindIDs is completed with one bind marker per id (at most
	// idLookupChunk), always from constants.
	cqlFindIDs = `SELECT id, base, position FROM event_ids WHERE stream = ? AND bucket IN (?, ?) AND id IN (`
	// schema/schema.cql: events.
	cqlReadBounds = `SELECT version, id, type, time, data, metadata, append_first, append_last FROM events WHERE stream = ? AND bucket = ? AND version IN ?`
)

// idLookupChunk bounds the ids of one IN query (2 buckets × ids rows).
const idLookupChunk = 50

// clientIDs returns the ids the client chose; only those identify a retry.
func clientIDs(req *log.AppendRequest) []uuid.UUID {
	var ids []uuid.UUID
	for i := range req.Events {
		if req.Events[i].ClientID {
			ids = append(ids, req.Events[i].ID)
		}
	}
	return ids
}

// recordIDs records, before the conditional write into bucket, that the
// ids of each included append may land at its base+1+position. A later
// retry finds them there while bucket is the stream's current or previous
// one.
func (s *Store) recordIDs(ctx context.Context, stream log.StreamID, included []*pending, bucket int64) error {
	ttl := int(s.o.IdempotencyWindow.Seconds())
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for _, p := range included {
		for pos := range p.req.Events {
			if ev := &p.req.Events[pos]; ev.ClientID {
				b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlRecordID, Args: []any{string(stream), bucket, [16]byte(ev.ID), p.base, pos, ttl}, Idempotent: true})
			}
		}
	}
	if len(b.Entries) == 0 {
		return nil
	}
	if err := b.ExecContext(ctx); err != nil {
		s.metrics.storageError("record_ids")
		return readErr("record event ids", err)
	}
	return nil
}

// resolveStored decides, against the stream as of version cur in bucket,
// which appends of group are already stored: a retry of a stored append
// gets its original result, one that repeats stored ids otherwise gets
// ErrIdempotencyConflict; both are final.
//
// Every attempt records its ids with the head it conditions on before it
// writes, so an id stored at or below cur (within the window) is found at
// base+1+position of one of its records. The caller's conditional write at
// cur makes this check and the write atomic together: a head that moved
// since (a new version, or a new bucket) fails it, and the check reruns.
func (s *Store) resolveStored(ctx context.Context, stream log.StreamID, group []*pending, bucket, cur int64) error {
	var ids []uuid.UUID
	want := map[int64][]uuid.UUID{} // version → ids that may be there
	for _, p := range group {
		if p.final {
			continue
		}
		ids = append(ids, p.ids...)
		// With an exact expected version behind the head, the append's
		// events would sit right after it: look there too, so retries
		// older than the idempotency window are still recognised.
		if e := int64(p.req.Expected); p.req.Expected.Exact() && e < cur && len(p.ids) > 0 {
			for i := range p.req.Events {
				if v := e + 1 + int64(i); v <= cur {
					want[v] = append(want[v], p.req.Events[i].ID)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	for start := 0; start < len(ids); start += idLookupChunk {
		chunk := ids[start:min(start+idLookupChunk, len(ids))]
		args := make([]any, 0, len(chunk)+3)
		args = append(args, string(stream), max(bucket-1, 0), bucket)
		for _, id := range chunk {
			args = append(args, [16]byte(id))
		}
		stmt := cqlFindIDs + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + ")"
		iter := s.session.Query(stmt, args...).WithContext(ctx).Idempotent(true).Iter()
		var (
			id       uuid.UUID
			base     int64
			position int
		)
		for iter.Scan((*[16]byte)(&id), &base, &position) {
			if v := base + 1 + int64(position); v <= cur {
				want[v] = append(want[v], id)
			}
		}
		if err := iter.Close(); err != nil {
			s.metrics.storageError("find_ids")
			return readErr("find event ids", err)
		}
	}
	if len(want) == 0 {
		return nil
	}
	stored, err := s.eventsAt(ctx, stream, want)
	if err != nil || len(stored) == 0 {
		return err
	}
	for _, p := range group {
		if p.final {
			continue
		}
		n := 0
		for _, id := range p.ids {
			if _, ok := stored[id]; ok {
				n++
			}
		}
		switch {
		case n == 0:
			continue
		case len(p.ids) == len(p.req.Events):
			if first, ok := sameAppend(p.req, stored); ok {
				p.res, p.final = result(p.req, first, true), true
				p.res.Time = stored[p.req.Events[0].ID].Time.UTC()
				continue
			}
		}
		p.err, p.final = fmt.Errorf("append to %s: %w: %d of its %d event ids are stored, not as this same append",
			stream, log.ErrIdempotencyConflict, n, len(p.req.Events)), true
	}
	return nil
}

// storedEvent is an event with the bounds of the append it came in.
type storedEvent struct {
	log.RecordedEvent
	appendFirst, appendLast int64
}

// eventsAt reads the events at the wanted versions and keeps, by id, those
// that hold one of the ids wanted there.
func (s *Store) eventsAt(ctx context.Context, stream log.StreamID, want map[int64][]uuid.UUID) (map[uuid.UUID]storedEvent, error) {
	lo, hi := int64(-1), int64(-1)
	for v := range want {
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	bs, err := s.buckets(ctx, stream)
	if err != nil {
		return nil, err
	}
	stored := map[uuid.UUID]storedEvent{}
	for _, sp := range partition.Locate(bs, lo, hi) {
		// Only the wanted versions, never the rows between them.
		var versions []int64
		for v := range want {
			if v >= sp.From && (sp.To == 0 || v <= sp.To) {
				versions = append(versions, v)
			}
		}
		if len(versions) == 0 {
			continue
		}
		iter := s.session.Query(cqlReadBounds, string(stream), sp.Bucket, versions).WithContext(ctx).Idempotent(true).Iter()
		var ev storedEvent
		for iter.Scan(&ev.Version, (*[16]byte)(&ev.ID), &ev.Type, &ev.Time, &ev.Data, &ev.Metadata, &ev.appendFirst, &ev.appendLast) {
			if slices.Contains(want[ev.Version], ev.ID) {
				stored[ev.ID] = ev
			}
		}
		if err := iter.Close(); err != nil {
			s.metrics.storageError("read")
			return nil, readErr("read stored events", err)
		}
	}
	return stored, nil
}

// sameAppend reports whether stored holds exactly req as one earlier
// append: every event, same payload, consecutive in request order, and
// nothing else in that append.
func sameAppend(req *log.AppendRequest, stored map[uuid.UUID]storedEvent) (int64, bool) {
	n := int64(len(req.Events))
	var first int64
	for i := range req.Events {
		ev, ok := stored[req.Events[i].ID]
		if !ok || !ev.SamePayload(&req.Events[i]) {
			return 0, false
		}
		if i == 0 {
			first = ev.Version
		}
		if ev.Version != first+int64(i) || ev.appendFirst != first || ev.appendLast != first+n-1 {
			return 0, false
		}
	}
	return first, true
}
