package streams

import (
	"bytes"
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// Match is what a stream holds of an append's client ids.
type Match struct {
	// Duplicate: one earlier append holds exactly these events (ids,
	// order, payload), at FirstVersion, committed at Time.
	Duplicate    bool
	FirstVersion int64
	Time         time.Time
	// Stored counts the request's ids found in the stream otherwise.
	Stored int
}

// MatchAppend looks for req's events in the stream up to version head:
// where its client ids are recorded in the given buckets (the current and
// previous one, as of the retry and of its commit group), at the versions
// known (where the owner knows some of them to be, in any bucket: the low
// ids it holds, kept for good), and, for an exact expected version E below
// head, at E+1… Call it only once every commit up to head is filled.
func (s *Store) MatchAppend(ctx context.Context, req *log.AppendRequest, head int64, buckets []int64, known []int64) (Match, error) {
	var ids []uuid.UUID
	want := make(map[uuid.UUID]bool, len(req.Events))
	for i := range req.Events {
		if req.Events[i].ClientID {
			ids = append(ids, req.Events[i].ID)
			want[req.Events[i].ID] = true
		}
	}
	lo, hi := int64(0), int64(0)
	widen := func(v int64) {
		if v < 1 || v > head {
			return
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if len(ids) > 0 && len(buckets) > 0 {
		found, _, err := s.LookupIDs(ctx, req.Stream, buckets, head, ids, false)
		if err != nil {
			return Match{}, err
		}
		for _, v := range found {
			widen(v)
		}
	}
	for _, v := range known {
		widen(v)
	}
	if e := int64(req.Expected); req.Expected.Exact() && e < head {
		widen(e + 1)
		widen(min(e+int64(len(req.Events)), head))
	}
	if lo == 0 {
		return Match{}, nil
	}
	bs, err := s.Buckets(ctx, req.Stream)
	if err != nil {
		return Match{}, err
	}
	var m Match
	seen := map[uuid.UUID]bool{}
	err = s.Chunks(ctx, req.Stream, bs, lo, hi, false, 0, func(c *Chunk) error {
		v := c.FirstVersion
		for _, a := range c.Appends {
			if !m.Duplicate && sameEvents(a.Events, req.Events) {
				m.Duplicate, m.FirstVersion, m.Time = true, v, c.Time
			}
			for _, e := range a.Events {
				if want[e.ID] {
					seen[e.ID] = true
				}
			}
			v += int64(len(a.Events))
		}
		return nil
	})
	if err != nil {
		return Match{}, err
	}
	m.Stored = len(seen)
	return m, nil
}

func sameEvents(stored []recordEvent, req []log.ProposedEvent) bool {
	if len(stored) != len(req) {
		return false
	}
	for i := range stored {
		s, p := &stored[i], &req[i]
		if !p.ClientID || s.ID != p.ID || s.Type != p.Type || !bytes.Equal(s.Data, p.Data) || !bytes.Equal(s.Metadata, p.Metadata) {
			return false
		}
	}
	return true
}

type recordEvent = record.Event
