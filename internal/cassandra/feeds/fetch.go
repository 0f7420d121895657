package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// row is one log row as a read needs it: decoded once, filtered.
type row struct {
	seq  int64
	time time.Time
	n    int // events in the row
	rec  record.Record
	// sel locates the selected events from the read position on, in row
	// order. A row's Events are made only as the merge takes them: made
	// for a whole row at decode time, they were a quarter of a catch-up
	// read's allocations.
	sel []ref
	// buf is the pooled buffer rec's events alias (continuous reads), to
	// go back to Reader.bufs once no page the caller holds has them.
	buf []byte
	// mem holds rec's appends and events and sel (continuous reads), to
	// go back to Reader.bufs once the merge has passed the row.
	mem *rowMem
}

// ref locates one event of a row: event j of append a, index idx in the
// row (a record holds at most record.MaxEvents).
type ref struct{ a, j, idx int32 }

// event returns the row's selected event k of shard (Cursor unset).
func (rw *row) event(shard, k int) Event {
	r := rw.sel[k]
	a := &rw.rec.Appends[r.a]
	e := &a.Events[r.j]
	return Event{
		RecordedEvent: log.RecordedEvent{
			Stream: a.Stream, ID: e.ID, Type: e.Type, Version: a.FirstVersion + int64(r.j), Time: rw.time,
			Data: json.RawMessage(e.Data), Metadata: json.RawMessage(e.Metadata),
		},
		Shard: shard, Seq: rw.seq, Index: int(r.idx),
	}
}

// batch is one message from a shard's fetch to the merge: rows in log
// order, contiguous with the previous batch's. done ends the stream; then
// atEnd says whether the rows sent reach the end of the log, and endTime
// is the time no later commit of the shard can be before (zero: its log
// was never opened, so none is known).
type batch struct {
	rows    []row
	done    bool
	atEnd   bool
	endTime time.Time
	err     error
}

// fetch reads one shard's log from a position, a chunk of rows per query,
// decoding and filtering each record once, and hands the rows to the merge
// one batch at a time (the next chunk is read while the merge uses the
// previous one; a continuous read keeps several queries in flight over
// rows it knows are committed: ahead).
type fetch struct {
	r     *Reader
	shard int
	f     filter
	next  int64 // the next seq to read
	skip  int   // events of row next already read (the cursor's index)
	chunk int   // rows of the next query
	share int   // selected events the merge likely wants from this shard

	pool       *bufPool // continuous reads: where records are decompressed
	rowsLeft   int      // rows this read may still pass (Options.ScanRows)
	eventsLeft int      // selected events the merge can still use (the limit)
	batch      int      // if > 0, about the most selected events a query reads (Reader.Pages)
	rows       int      // rows read by this fetch
	events     int      // selected events read by this fetch
	recBytes   int64    // decoded record bytes of those rows (recordBytes)

	lastTime time.Time // commit time of row next-1, once read here
	floor    time.Time // the segment's floor, read by the last query
	// known is the last_seq of segment knownSeg as the last query saw it:
	// every row up to it is committed, so a continuous read may query
	// several ranges of them at once (ahead).
	known, knownSeg int64
	out             chan<- batch
}

// errChunkFull stops a query that has read Options.ChunkBytes.
var errChunkFull = errors.New("chunk full")

// recordBytes is what a log row's record holds decoded, which is what a
// read keeps in memory and bounds by ChunkBytes: a record of 1 MB of one
// repeated byte is stored in a few dozen.
func recordBytes(rec []byte) int {
	if n := record.PlainLen(rec); n > 0 {
		return n
	}
	return len(rec)
}

func (fe *fetch) run(ctx context.Context) {
	send := func(b batch) bool {
		select {
		case fe.out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	recheck := false // rows appeared after a query found none
	for {
		if fe.rowsLeft <= 0 || fe.eventsLeft <= 0 {
			send(batch{done: true}) // the merge cannot use more
			return
		}
		if fe.batch > 0 {
			read, err := fe.ahead(ctx, send)
			if err != nil {
				send(batch{err: err})
				return
			}
			if read {
				recheck = false
				continue
			}
		}
		rows, segmentDone, lastSeq, err := fe.query(ctx)
		if err != nil {
			send(batch{err: err})
			return
		}
		if len(rows) > 0 {
			recheck = false
			// The end of the log (as this query saw it) only when the last
			// row read is the segment's last_seq and the segment is not
			// full: a full segment's last_seq stays at its end while the
			// log goes on in the next one.
			if fe.next-1 == lastSeq && !segmentDone {
				// No later commit is before the floor read with lastSeq
				// (an idle owner raises it) nor before the last row.
				end := fe.lastTime
				if fe.floor.After(end) {
					end = fe.floor
				}
				send(batch{rows: rows, done: true, atEnd: true, endTime: end})
				return
			}
			if !send(batch{rows: rows}) {
				return
			}
			fe.grow()
			continue
		}
		// No row at fe.next: the end of the log, rows committed since the
		// query, or a position past the log.
		end, more, err := fe.endAt(ctx)
		switch {
		case err != nil:
			send(batch{err: err})
			return
		case more && recheck:
			send(batch{err: fmt.Errorf("shard %d: %w: log row %d is committed but was not read", fe.shard, log.ErrUnavailable, fe.next)})
			return
		case more:
			recheck = true
			continue
		}
		send(batch{done: true, atEnd: true, endTime: end})
		return
	}
}

// grow sizes the next query. The first reads one row (rows hold from one
// event to a whole commit group of thousands); then, from the events per
// row seen, enough rows for the shard's share of the page, and at least
// twice the last query, up to Options.PageSize.
func (fe *fetch) grow() {
	c := 2 * fe.chunk
	switch {
	case fe.events == 0:
		c = 4 * fe.chunk // nothing selected yet: a rare feed
	case fe.events < fe.share:
		c = max(c, ceilDiv((fe.share-fe.events)*fe.rows, fe.events))
	}
	fe.chunk = min(c, fe.r.o.PageSize)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// query reads the next chunk of rows of the segment holding fe.next.
// segmentDone: the rows read reach the segment's last row. lastSeq is the
// segment's last_seq as the query saw it (see shardlog.Log.Rows).
func (fe *fetch) query(ctx context.Context) (rows []row, segmentDone bool, lastSeq int64, err error) {
	o := &fe.r.o
	g := shardlog.Segment(fe.next, fe.r.rows)
	end := (g + 1) * fe.r.rows
	n := min(fe.chunk, fe.rowsLeft)
	if fe.f.kind == log.FeedAll {
		n = min(n, fe.eventsLeft) // every row holds an event or more
	}
	if fe.events > 0 {
		// No more rows than the events left need, at the rate seen; a
		// continuous read (no budget) about a batch's worth, so what it
		// holds decoded ahead of the merge stays near a page.
		n = min(n, max(1, ceilDiv(fe.eventsLeft*fe.rows, fe.events)))
		if fe.batch > 0 {
			n = min(n, max(1, ceilDiv(fe.batch*fe.rows, fe.events)))
		}
	}
	through := min(end, fe.next-1+int64(n))
	bytes := 0
	var floor time.Time
	lastSeq, floor, err = fe.r.log.Rows(ctx, fe.shard, g, fe.next-1, through, n, func(lr shardlog.Row) error {
		if lr.Seq != fe.next {
			return fmt.Errorf("shard %d: %w: log row %d missing, row %d follows", fe.shard, log.ErrUnavailable, fe.next, lr.Seq)
		}
		rw, err := decodeRow(fe.shard, g, lr, fe.skip, fe.f, fe.pool, false)
		if err != nil {
			return err
		}
		fe.skip = 0
		fe.next++
		fe.lastTime = lr.Time
		fe.rowsLeft--
		fe.eventsLeft -= len(rw.sel)
		fe.rows++
		fe.events += len(rw.sel)
		rows = append(rows, rw)
		plain := recordBytes(lr.Record)
		fe.recBytes += int64(plain)
		if bytes += plain; bytes >= o.ChunkBytes {
			return errChunkFull
		}
		return nil
	})
	if errors.Is(err, errChunkFull) {
		err = nil
	}
	if err != nil {
		return nil, false, 0, err
	}
	fe.floor = floor
	fe.known, fe.knownSeg = lastSeq, g
	return rows, fe.next-1 == end, lastSeq, nil
}

// endAt decides, when no row follows fe.next-1 in its segment, whether
// the log ends there (end: no later commit of the shard has an earlier
// time), or rows were committed since the query (more), or fe.next is past
// the log (ErrFuturePosition).
func (fe *fetch) endAt(ctx context.Context) (end time.Time, more bool, err error) {
	last := fe.next - 1
	st, more, err := fe.r.logEnd(ctx, fe.shard, fe.next, fe.skip)
	if err != nil || more {
		return time.Time{}, more, err
	}
	// At the end. The floor is the owner's promise that it commits nothing
	// older: the last commit's time or more.
	end = st.Floor
	if fe.lastTime.After(end) {
		end = fe.lastTime
	}
	if end.IsZero() && last > 0 {
		err := fe.r.session.Query(cqlRowTime, fe.shard, shardlog.Segment(last, fe.r.rows), last).
			WithContext(ctx).Idempotent(true).Scan(&end)
		if err != nil && !errors.Is(err, gocql.ErrNotFound) {
			return time.Time{}, false, cql.ReadErr("read log row time", err)
		}
	}
	return end, false, nil
}

// logEnd places the position (next, skip) of shard (the next row to read,
// and the events of it already read) against its committed log, reading
// the statics of the segment holding next (and of the full one before,
// when next would open a segment), no row: more when the log holds rows
// from next on; else the log ends at next-1, and st is the statics of the
// segment it ends in (not Exists for a log never written). A position past
// the log's end, or inside a row that is not there, is ErrFuturePosition.
func (r *Reader) logEnd(ctx context.Context, shard int, next int64, skip int) (st shardlog.Statics, more bool, err error) {
	lg, rows := r.log, r.rows
	last := next - 1
	g := shardlog.Segment(next, rows)
	future := func() error {
		return badPosition(ErrFuturePosition, fmt.Sprintf("position %d.%d of shard %d is past the end of its log", next, skip, shard))
	}
	if st, err = lg.Statics(ctx, shard, g, false); err != nil {
		return st, false, err
	}
	if !st.Exists {
		// Segment g is opened by the first commit into it; until then the
		// log ends where g-1 is full (or is empty, for g = 0).
		if last != g*rows || skip > 0 {
			return st, false, future()
		}
		if g == 0 {
			return st, false, nil
		}
		// The full segment's statics: its floor may be past its last row
		// (an idle owner raises it before it opens the next segment).
		if st, err = lg.Statics(ctx, shard, g-1, false); err != nil {
			return st, false, err
		}
		if !st.Exists || st.LastSeq != last {
			return st, false, future()
		}
	}
	switch {
	case st.LastSeq > last:
		return st, true, nil
	case st.LastSeq < last || skip > 0: // or inside a row not there
		return st, false, future()
	}
	return st, false, nil
}

// decodeRow decodes a log row's record (of shard's segment; a corrupt one
// is a *log.CorruptError naming them) and keeps the events f selects
// from index `from` on. With a pool, a compressed record is decompressed
// into one of its buffers (row.buf), and its appends, events and selection
// go into a rowMem (row.mem). scratch says lr.Record is reused after this
// call (shardlog.Log.CommittedRows): a record that is not compressed is
// then copied into a buffer of the pool, as the events alias it.
func decodeRow(shard int, segment int64, lr shardlog.Row, from int, f filter, pool *bufPool, scratch bool) (row, error) {
	var (
		buf   []byte
		owned []byte // lr.Record copied out of scratch memory
		mem   *rowMem
		bufs  *record.Buffers
	)
	if pool != nil {
		mem = pool.getMem()
		bufs = &mem.rec
		if n := record.PlainLen(lr.Record); n > 0 {
			buf = pool.get(n)
		} else if scratch {
			owned = pool.get(len(lr.Record))
			owned = append(owned, lr.Record...)
			lr.Record = owned
		}
	}
	rec, fresh, err := record.DecodeRecordInto(lr.Record, buf, bufs)
	if err != nil {
		if pool != nil {
			pool.putMem(mem)
		}
		return row{}, &log.CorruptError{Kind: log.CorruptLogRecord, Shard: shard, Segment: segment, Seq: lr.Seq, Err: err}
	}
	if fresh == nil {
		fresh = owned
	}
	rw := row{seq: lr.Seq, time: lr.Time.UTC(), n: rec.Events(), rec: rec}
	if from > 0 && from >= rw.n {
		if pool != nil {
			pool.putMem(mem)
		}
		return row{}, badPosition(ErrFuturePosition, fmt.Sprintf("position %d.%d of shard %d is past the row's %d events", lr.Seq, from, shard, rw.n))
	}
	if mem != nil {
		rw.sel = mem.sel[:0]
	}
	if f.kind == log.FeedAll && cap(rw.sel) < rw.n-from {
		rw.sel = make([]ref, 0, rw.n-from)
	}
	idx := 0
	for i := range rec.Appends {
		a := &rec.Appends[i]
		if idx+len(a.Events) <= from || f.kind == log.FeedCategory && a.Stream.Category() != f.name {
			idx += len(a.Events)
			continue
		}
		for j := range a.Events {
			if idx >= from && (f.kind != log.FeedType || a.Events[j].Type == f.name) {
				rw.sel = append(rw.sel, ref{a: int32(i), j: int32(j), idx: int32(idx)})
			}
			idx++
		}
	}
	switch {
	case pool == nil:
	case len(rw.sel) == 0:
		// No event of this row reaches a page: its memory is free now (a
		// rare feed passes thousands of such rows a page).
		if fresh != nil {
			pool.put(fresh)
		}
		mem.sel = rw.sel
		pool.putMem(mem)
		rw.rec, rw.sel = record.Record{}, nil
	default:
		rw.buf = fresh
		mem.sel = rw.sel
		rw.mem = mem
	}
	return rw, nil
}
