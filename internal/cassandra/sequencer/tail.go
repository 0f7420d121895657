package sequencer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// The tail is what a shard's owner committed but has not yet written to
// the stream partitions. Appends are answered once committed; the filler
// writes the tail behind, a stream's pending chunks together (one row,
// a run of them, per stream and bucket rather than one per append), when the
// oldest record has waited FillDelay, when the tail outgrows TailBytes,
// or at once for a stream someone is about to read (flushStream): every
// read of a stream goes through its owner's flush first, so a reader on
// any instance sees every acknowledged event.

// fillConcurrency bounds the stream writes of one fill round.
const fillConcurrency = 32

type tail struct {
	mu      sync.Mutex
	streams map[log.StreamID]*streamTail
	recs    []*tailRec // committed records not wholly written, in seq order
	bytes   int
	want    map[log.StreamID]bool // streams a reader waits for
	all     bool                  // write everything (drain)
	wake    chan struct{}         // cap 1: the filler
	changed chan struct{}         // closed (and replaced) after each round
}

// streamTail is one stream's unwritten chunks.
type streamTail struct {
	chunks []streams.Pending // in version order
	last   int64             // the last version in the tail
	busy   bool              // a round is writing some of chunks
}

type tailRec struct {
	seq     int64
	at      time.Time // when committed (monotonic)
	time    time.Time // its commit time (the record's)
	left    int       // its chunks not yet written
	streams []log.StreamID
}

func newTail() *tail {
	return &tail{
		streams: map[log.StreamID]*streamTail{}, want: map[log.StreamID]bool{},
		wake: make(chan struct{}, 1), changed: make(chan struct{}),
	}
}

func (t *tail) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// pendingOf encodes the chunks of rec, to be committed at seq and time
// t, as the tail holds them.
func pendingOf(seq int64, t time.Time, rec *record.Record) []streams.Pending {
	chunks := record.Chunks(rec)
	out := make([]streams.Pending, len(chunks))
	for i := range chunks {
		out[i] = streams.NewPending(seq, t, &chunks[i])
	}
	return out
}

// add puts the chunks of a committed record (pendingOf) into the tail and
// returns the bytes it added.
func (t *tail) add(seq int64, at time.Time, commitTime time.Time, chunks []streams.Pending) int {
	r := &tailRec{seq: seq, at: at, time: commitTime, left: len(chunks)}
	added := 0
	t.mu.Lock()
	for i := range chunks {
		c := &chunks[i]
		st := t.streams[c.Stream]
		if st == nil {
			st = &streamTail{}
			t.streams[c.Stream] = st
			r.streams = append(r.streams, c.Stream)
		} else if len(st.chunks) == 0 || st.chunks[len(st.chunks)-1].Seq != seq {
			r.streams = append(r.streams, c.Stream)
		}
		st.chunks = append(st.chunks, *c)
		st.last = c.LastVersion
		added += chunkBytes(c)
	}
	t.bytes += added
	t.recs = append(t.recs, r)
	t.mu.Unlock()
	return added
}

// oldestTime is the commit time of the oldest record not wholly written,
// or next (the time of the record about to be added) when every record is.
func (t *tail) oldestTime(next time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.recs) > 0 {
		return t.recs[0].time
	}
	return next
}

// pendingBytes is what st's unwritten chunks count against TailBytes.
func (st *streamTail) pendingBytes() int {
	n := 0
	for i := range st.chunks {
		n += chunkBytes(&st.chunks[i])
	}
	return n
}

// maxRoundStreams bounds the streams of a round taken because the tail
// outgrew TailBytes (the filler writes fillConcurrency packs at a time).
const maxRoundStreams = 4096

// chunkBytes is what a chunk counts against TailBytes.
func chunkBytes(p *streams.Pending) int { return p.Payload }

// filler is the fill goroutine: it writes the tail in rounds until the
// shard stops, advancing the shard's filled seq.
func (sh *shard) filler() {
	t := sh.tail
	// What is left when the shard stops is the next owner's catch-up. Not
	// a deferred call: a panic under t.mu would wait for it for ever
	// rather than end the process.
	drop := func() {
		t.mu.Lock()
		sh.s.metrics.tailBytes.Sub(float64(t.bytes))
		t.bytes = 0
		t.mu.Unlock()
	}
	for {
		work := sh.nextRound()
		if work == nil {
			drop()
			return
		}
		start := time.Now()
		if !sh.writeRound(work) {
			drop()
			return // the shard stopped; a new owner's catch-up writes the rest
		}
		sh.s.metrics.fillTime.Observe(time.Since(start).Seconds())
		sh.s.metrics.fillWrites.Add(float64(len(work)))
		freed := 0
		t.mu.Lock()
		for stream, w := range work {
			sh.s.blocks.written(w)
			st := t.streams[stream]
			for i := range w {
				r := t.recs[w[i].Seq-t.recs[0].seq]
				r.left--
				freed += chunkBytes(&w[i])
			}
			// Written: the array behind the rest must not keep their
			// bytes alive (w is its first len(w) elements).
			clear(st.chunks[:len(w)])
			st.chunks = st.chunks[len(w):]
			st.busy = false
			if len(st.chunks) == 0 {
				delete(t.streams, stream)
			}
		}
		t.bytes -= freed
		sh.s.metrics.tailBytes.Sub(float64(freed))
		var filled int64
		for len(t.recs) > 0 && t.recs[0].left == 0 {
			filled = t.recs[0].seq
			t.recs[0] = nil
			t.recs = t.recs[1:]
		}
		if filled > 0 {
			sh.filled.Store(filled)
		}
		if len(t.recs) == 0 {
			t.all = false
		}
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
	}
}

// nextRound waits for work and takes it: for each chosen stream, all of
// its pending chunks. nil once the shard stopped.
func (sh *shard) nextRound() map[log.StreamID][]streams.Pending {
	t := sh.tail
	delay, budget := sh.s.cfg.FillDelay, sh.s.cfg.TailBytes
	for {
		t.mu.Lock()
		now := time.Now()
		chosen := map[log.StreamID]bool{}
		for s := range t.want {
			chosen[s] = true
		}
		over := t.bytes > budget
		var (
			next  time.Duration = -1
			taken int
		)
		for _, r := range t.recs {
			if !t.all && !over && now.Sub(r.at) < delay {
				next = delay - now.Sub(r.at)
				break
			}
			for _, s := range r.streams {
				if st := t.streams[s]; st != nil && !chosen[s] {
					chosen[s] = true
					taken += st.pendingBytes()
				}
			}
			// Past the budget: the oldest records, in one round, down to
			// three quarters of it. A record at a time (about a commit
			// group's streams per round, the rounds one after another)
			// fell behind the commits at 2,000 appends/s, which then
			// waited in tailRoom for seconds.
			if over && !t.all && (t.bytes-taken <= budget*3/4 || len(chosen) >= maxRoundStreams) {
				break
			}
		}
		work := map[log.StreamID][]streams.Pending{}
		for s := range chosen {
			st := t.streams[s]
			if st == nil || st.busy || len(st.chunks) == 0 {
				continue
			}
			st.busy = true
			work[s] = st.chunks[:len(st.chunks):len(st.chunks)]
			delete(t.want, s)
		}
		t.mu.Unlock()
		if len(work) > 0 {
			return work
		}
		var timer <-chan time.Time
		if next >= 0 {
			timer = time.After(next)
		}
		select {
		case <-sh.lost:
			return nil
		case <-t.wake:
		case <-timer:
		}
	}
}

// maxBatchPartitions is Cassandra's default
// unlogged_batch_across_partitions_warn_threshold: a fill batch stays at
// or under it.
const maxBatchPartitions = 10

// writeRound writes each stream's chunks, small streams packed several to
// a request (streams.Packs), the packs in parallel, retrying failures for
// as long as the shard is owned. false: the shard stopped.
func (sh *shard) writeRound(work map[log.StreamID][]streams.Pending) bool {
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, fillConcurrency)
		mu  sync.Mutex
		ok  = true
		ws  = make([][]streams.Pending, 0, len(work))
	)
	for _, w := range work {
		ws = append(ws, w)
	}
	var writes []func(context.Context) error
	for _, pack := range streams.Packs(ws) {
		if sh.s.cfg.Index == nil {
			writes = append(writes, func(ctx context.Context) error { return sh.s.cfg.Streams.WritePack(ctx, pack, nil) })
			continue
		}
		// The pack's index rows ride in its request, as far as Cassandra's
		// warning threshold of 10 partitions per batch leaves room.
		var chunks []streams.Pending
		for _, w := range pack {
			chunks = append(chunks, w...)
		}
		piggy, rest, done := sh.s.cfg.Index.Rows(sh.id, chunks, max(1, maxBatchPartitions-len(pack)))
		writes = append(writes, func(ctx context.Context) error {
			if err := sh.s.cfg.Streams.WritePack(ctx, pack, piggy); err != nil {
				return err
			}
			for _, rows := range rest {
				if err := sh.s.cfg.Index.Exec(ctx, rows); err != nil {
					return err
				}
			}
			done()
			return nil
		})
	}
	for _, write := range writes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			backoff := 50 * time.Millisecond
			for {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				err := write(ctx)
				cancel()
				if err == nil {
					return
				}
				select {
				case <-sh.lost:
					mu.Lock()
					ok = false
					mu.Unlock()
					return
				default:
				}
				sh.s.cfg.Logger.Warn("fill failed, retrying", "shard", sh.id, "err", err)
				select {
				case <-sh.lost:
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 2*time.Second)
			}
		}()
	}
	wg.Wait()
	return ok
}

// flushStream returns once every event of stream committed so far is in
// its partitions; with inFlight, also those of the batch being committed,
// if it appends to stream. A reader asks for that: the batch's commit time
// was taken before its conditional write, maybe before the read began, so
// an answer as of a moment past that time would otherwise change once the
// batch lands (a slow Paxos round, or the settling of an unknown outcome).
// The checker does not: the batch may be waiting to hand it work.
func (sh *shard) flushStream(ctx context.Context, stream log.StreamID, inFlight bool) error {
	if inFlight {
		if err := sh.awaitBatch(ctx, stream); err != nil {
			return err
		}
	}
	t := sh.tail
	t.mu.Lock()
	st := t.streams[stream]
	if st == nil {
		t.mu.Unlock()
		return nil
	}
	target := st.last
	t.want[stream] = true
	t.poke()
	for {
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-sh.lost:
			return fmt.Errorf("shard %d: %w: the shard stopped before %s was written", sh.id, log.ErrUnavailable, stream)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for %s to be written: %v", log.ErrUnavailable, stream, ctx.Err())
		}
		t.mu.Lock()
		st = t.streams[stream]
		if st == nil || len(st.chunks) > 0 && st.chunks[0].FirstVersion > target {
			t.mu.Unlock()
			return nil
		}
		if !st.busy {
			t.want[stream] = true
			t.poke()
		}
	}
}

// renewed records that a claim or renewal sent at sent applied.
func (sh *shard) renewed(sent time.Time) {
	sh.mu.Lock()
	if sent.After(sh.leaseFrom) {
		sh.leaseFrom = sent
	}
	sh.mu.Unlock()
}

func (sh *shard) leaseSince() time.Time {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.leaseFrom
}

// leaseFresh reports whether no other instance can have claimed the shard
// yet: the last claim or renewal that applied was sent less than 7/8 of a
// TTL ago (the eighth covers clocks running at slightly different rates).
// Renewals come every quarter TTL, so a live owner is always fresh.
func (sh *shard) leaseFresh() bool {
	return time.Since(sh.leaseSince()) < sh.s.cfg.LeaseTTL*7/8
}

// awaitBatch waits until the batch being committed is decided, if it
// appends to stream.
func (sh *shard) awaitBatch(ctx context.Context, stream log.StreamID) error {
	sh.mu.Lock()
	var decided chan struct{}
	if sh.committing && slices.Contains(sh.batchStreams, stream) {
		decided = sh.decided
	}
	sh.mu.Unlock()
	if decided == nil {
		return nil
	}
	select {
	case <-decided:
		return nil
	case <-sh.lost:
		return fmt.Errorf("shard %d: %w: the shard stopped before %s's commit was decided", sh.id, log.ErrUnavailable, stream)
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a commit to %s: %v", log.ErrUnavailable, stream, ctx.Err())
	}
}

// tailRoom waits while the tail holds twice TailBytes (the filler writes
// the oldest records at once past TailBytes, so this is where commits
// outrun the stream writes: they wait rather than grow the heap). false:
// the shard stopped.
func (sh *shard) tailRoom() bool {
	t := sh.tail
	for {
		t.mu.Lock()
		full, ch := t.bytes > 2*sh.s.cfg.TailBytes, t.changed
		t.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-ch:
		case <-sh.lost:
			return false
		}
	}
}

// flushAll asks the filler to write everything committed so far.
func (sh *shard) flushAll() {
	t := sh.tail
	t.mu.Lock()
	t.all = true
	t.mu.Unlock()
	t.poke()
}
