package cassandra

import (
	"context"
	"fmt"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

const (
	// schema/schema.cql: event_ids.
	cqlRecordID = `INSERT INTO event_ids (stream, id, base, position) VALUES (?, ?, ?, ?) USING TTL ?`
	// cqlFindIDs is completed with one bind marker per id (at most
	// idLookupChunk), always from constants.
	cqlFindIDs = `SELECT id, base, position FROM event_ids WHERE stream = ? AND id IN (`
)

// idLookupChunk bounds the ids of one IN query.
const idLookupChunk = 100

// idempotency is one append's view of its own client-chosen ids.
type idempotency struct {
	ids    []uuid.UUID
	failed map[int64]bool // bases of this append's attempts that were not applied
}

func newIdempotency(req *log.AppendRequest) *idempotency {
	idem := &idempotency{}
	for i := range req.Events {
		if req.Events[i].ClientID {
			idem.ids = append(idem.ids, req.Events[i].ID)
		}
	}
	return idem
}

func (i *idempotency) enabled() bool { return len(i.ids) > 0 }

// tried notes an attempt at base; the caller comes back only when it was
// not applied.
func (i *idempotency) tried(base int64) {
	if i.failed == nil {
		i.failed = make(map[int64]bool)
	}
	i.failed[base] = true
}

// recordIDs records, before the conditional write at base, that this
// append's ids may land at base+1+position. A later retry finds them there.
func (s *Store) recordIDs(ctx context.Context, req *log.AppendRequest, base int64) error {
	ttl := int(s.o.IdempotencyWindow.Seconds())
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for pos := range req.Events {
		if ev := &req.Events[pos]; ev.ClientID {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlRecordID, Args: []any{string(req.Stream), [16]byte(ev.ID), base, pos, ttl}, Idempotent: true})
		}
	}
	if err := b.ExecContext(ctx); err != nil {
		s.metrics.storageError("record_ids")
		return readErr("record event ids", err)
	}
	return nil
}

// findStored decides, against the stream as of version cur, whether req's
// client-chosen ids are already stored. done is true when the append must
// not be written: it is a retry of a stored append (the result carries the
// original versions) or it conflicts with stored events
// (ErrIdempotencyConflict).
func (s *Store) findStored(ctx context.Context, req *log.AppendRequest, idem *idempotency, cur int64) (log.AppendResult, bool, error) {
	candidates := map[int64]uuid.UUID{} // version → id that would be there
	for start := 0; start < len(idem.ids); start += idLookupChunk {
		chunk := idem.ids[start:min(start+idLookupChunk, len(idem.ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, string(req.Stream))
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
			if v := base + 1 + int64(position); !idem.failed[base] && v <= cur {
				candidates[v] = id
			}
		}
		if err := iter.Close(); err != nil {
			s.metrics.storageError("find_ids")
			return log.AppendResult{}, false, readErr("find event ids", err)
		}
	}
	// With an exact expected version behind the head, the append's events
	// would sit right after it: compare there too, so retries older than
	// the idempotency window are still recognised.
	if e := int64(req.Expected); req.Expected.Exact() && e < cur {
		for i := range req.Events {
			if v := e + 1 + int64(i); v <= cur {
				candidates[v] = req.Events[i].ID
			}
		}
	}
	if len(candidates) == 0 {
		return log.AppendResult{}, false, nil
	}
	stored, err := s.eventsAt(ctx, req.Stream, candidates)
	if err != nil {
		return log.AppendResult{}, false, err
	}
	if len(stored) == 0 {
		return log.AppendResult{}, false, nil
	}
	if first, ok := sameAppend(req, stored); ok {
		return result(req, first, true), true, nil
	}
	return log.AppendResult{}, true, fmt.Errorf("append to %s: %w: %d of its %d event ids are already stored, not as this same append",
		req.Stream, log.ErrIdempotencyConflict, len(stored), len(req.Events))
}

// eventsAt reads the events at the candidate versions and keeps those whose
// id is the expected one, by id.
func (s *Store) eventsAt(ctx context.Context, stream log.StreamID, candidates map[int64]uuid.UUID) (map[uuid.UUID]log.RecordedEvent, error) {
	lo, hi := int64(-1), int64(-1)
	for v := range candidates {
		if lo < 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	stored := map[uuid.UUID]log.RecordedEvent{}
	// Candidates are almost always one short run; read the span once.
	err := s.ReadStream(ctx, log.ReadRange{Stream: stream, From: lo, To: hi}, func(ev *log.RecordedEvent) error {
		if id, ok := candidates[ev.Version]; ok && id == ev.ID {
			stored[ev.ID] = *ev
		}
		return nil
	})
	return stored, err
}

// sameAppend reports whether stored holds exactly req: every event, same
// payload, at consecutive versions in request order.
func sameAppend(req *log.AppendRequest, stored map[uuid.UUID]log.RecordedEvent) (int64, bool) {
	if len(stored) != len(req.Events) {
		return 0, false
	}
	var first int64
	for i := range req.Events {
		ev, ok := stored[req.Events[i].ID]
		if !ok || !ev.SamePayload(&req.Events[i]) {
			return 0, false
		}
		if i == 0 {
			first = ev.Version
		} else if ev.Version != first+int64(i) {
			return 0, false
		}
	}
	return first, true
}
