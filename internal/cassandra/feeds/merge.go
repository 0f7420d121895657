package feeds

import (
	"context"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/internal/record"
)

// input is one shard's side of a merge.
type input struct {
	shard   int
	ch      <-chan batch
	buf     []row // rows received, not yet passed; buf[0] is the head
	off     int   // selected events of buf[0] already returned
	done    bool  // the fetch sent its last batch
	atEnd   bool  // … and it reached the end of the log
	endTime time.Time
	passed  time.Time // commit time of the last row passed in this read
}

// merge takes the selected shards' rows in (commit time, shard, seq)
// order and builds the page. It only decides with the head of every shard
// that has one in hand or may still send one, so a page is a prefix of
// that order over what the shards hold.
type merge struct {
	r        *Reader
	shards   int
	limit    int
	maxBytes int // 0: no bound
	size     int // the events' estimated bytes so far
	scanRows int
	pos      []ShardPos // the page's position, every shard
	in       []*input   // selected shards, ascending
	events   []Event
	arena    []ShardPos // backing for the events' cursors
	// blocks are the arenas this page took, blocks[used:] those a page
	// of two Nexts ago left for it to reuse (Pages).
	blocks [][]ShardPos
	used   int
	// retired collects the pooled buffers of the rows passed (Pages puts
	// them back once the pages holding their events are released).
	retired [][]byte
}

// full reports whether the page holds its limit of events, or at least
// one event and maxBytes.
func (m *merge) full() bool {
	return len(m.events) >= m.limit || m.maxBytes > 0 && len(m.events) > 0 && m.size >= m.maxBytes
}

// EventBytes estimates what an event costs a page: its data, metadata,
// type and stream, and about 200 bytes of ids, positions and times.
func EventBytes(e *Event) int {
	return len(e.Data) + len(e.Metadata) + len(e.Type) + len(e.Stream) + 200
}

func (m *merge) run(ctx context.Context) (Page, error) {
	passed := 0
	for {
		var best *input
		stop := false
		for _, in := range m.in {
			if len(in.buf) == 0 && !in.done {
				select {
				case b := <-in.ch:
					if b.err != nil {
						return Page{}, b.err
					}
					in.buf = b.rows
					in.done, in.atEnd, in.endTime = b.done, b.atEnd, b.endTime
				case <-ctx.Done():
					return Page{}, fmt.Errorf("read feed: %w", ctx.Err())
				}
			}
			if len(in.buf) == 0 {
				// A fetch that stopped short of the end (its share of the
				// read's budget is spent) could hold the next row: the
				// page ends here.
				stop = stop || !in.atEnd
				continue
			}
			if best == nil || in.buf[0].time.Before(best.buf[0].time) {
				best = in
			}
		}
		if stop || best == nil {
			break
		}
		rw := &best.buf[0]
		for best.off < len(rw.sel) && !m.full() {
			e := rw.event(best.shard, best.off)
			best.off++
			m.pos[best.shard] = after(rw.seq, e.Index, rw.n)
			e.Cursor = m.cursor()
			m.events = append(m.events, e)
			m.size += EventBytes(&e)
		}
		if best.off == len(rw.sel) {
			// Passed: the row's other events are not the feed's.
			m.pos[best.shard] = ShardPos{Seq: rw.seq + 1}
			if rw.buf != nil {
				m.retired = append(m.retired, rw.buf)
			}
			if rw.mem != nil {
				// The page's events are copies: only their bytes (rw.buf)
				// stay in use.
				m.r.bufs.putMem(rw.mem)
				rw.mem, rw.rec, rw.sel = nil, record.Record{}, nil
			}
			best.passed = rw.time
			best.buf, best.off = best.buf[1:], 0
			passed++
		}
		if m.full() || passed >= m.scanRows {
			break
		}
	}
	p := Page{Events: m.events, Next: NewCursor(m.pos), AtEnd: true}
	var (
		low           time.Time
		have, unknown bool
	)
	for _, in := range m.in {
		var t time.Time
		switch {
		case len(in.buf) > 0:
			t = in.buf[0].time // the first row not passed
		case in.atEnd && !in.endTime.IsZero():
			t = in.endTime
		case !in.passed.IsZero():
			t = in.passed // rows not yet received start no earlier
		default:
			unknown = true
		}
		if len(in.buf) > 0 || !in.atEnd {
			p.AtEnd = false
		}
		if !have || t.Before(low) {
			low, have = t, true
		}
	}
	if have && !unknown {
		// Every unread commit of a selected shard is at or after low, and
		// may be at low itself.
		p.CompleteUpTo = low.Add(-time.Millisecond)
	}
	return p, nil
}

// cursor returns a copy of the page's position, from a shared backing
// array (one allocation per block of events, not per event, and none
// when an earlier page's block is free again).
func (m *merge) cursor() Cursor {
	if len(m.arena) < m.shards {
		n := m.shards * max(min(m.limit-len(m.events), 256), 1)
		if m.used < len(m.blocks) && len(m.blocks[m.used]) >= n {
			m.arena = m.blocks[m.used]
		} else {
			m.arena = make([]ShardPos, n)
			m.blocks = append(m.blocks[:m.used], m.arena)
		}
		m.used++
	}
	c := m.arena[:m.shards:m.shards]
	m.arena = m.arena[m.shards:]
	copy(c, m.pos)
	return Cursor{pos: c}
}
