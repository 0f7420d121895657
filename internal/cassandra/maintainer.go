package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// The watermark maintainer. Every instance runs one; they coordinate only
// through conditional writes on the watermark row, so any number may run
// (each step of one is safe whatever the others do) and the feeds keep
// advancing while any instance lives.
//
// One step, from watermark W:
//
//  1. Establish a pending watermark T (now − FeedLag) with a conditional
//     write IF pending = null AND watermark = W. From then on no intent
//     can be stored at or below T: an appender reads the row after storing
//     its intent and moves past T, or stored it before T was established,
//     in which case step 2 sees it.
//  2. Scan the outbox for intents in (W, T]. Intents not done are waited
//     for; those open longer than FeedRepairAfter (their appender crashed
//     or lost the answer of its batch) are resolved (resolve).
//  3. Set the watermark to T, or to just before the oldest intent still
//     open (keeping T pending, so nothing new lands below it), with a
//     conditional write IF pending = T. When T is reached, the same write
//     establishes the next pending watermark, which the next step scans:
//     one conditional write per step while appends flow.

// maxStep bounds how far one step moves the watermark, so catching up
// after a long outage proceeds in bounded scans.
const maxStep = time.Hour

type maintainer struct {
	s *Store
	// The intents still open at or below cur, found by the scan that
	// followed cur's establishment; valid while cur stays pending.
	cur  time.Time
	open []intent
	// firstSeen is when each open intent was first seen open, on this
	// instance's monotonic clock (never compared with other clocks).
	firstSeen map[uuid.UUID]time.Time
	idle      int // consecutive steps that found nothing to do
	// watermark is the last one this maintainer read or wrote.
	watermark time.Time
}

func newMaintainer(s *Store) *maintainer {
	return &maintainer{s: s, firstSeen: make(map[uuid.UUID]time.Time)}
}

func (m *maintainer) run(ctx context.Context) {
	f := m.s.feeds
	for {
		d := m.s.o.FeedTick
		if m.idle > 20 {
			d *= 10
		}
		d += time.Duration(rand.Int64N(int64(d) / 5)) // de-synchronise instances
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.kick:
			m.idle = 0
			t.Stop()
			// Let the rest of a burst commit, then step once.
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.s.o.FeedTick / 2):
			}
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 3*m.s.o.Timeout)
		moved, err := m.step(sctx)
		cancel()
		m.s.metrics.feedOpen.Set(float64(len(m.open)))
		if !m.watermark.IsZero() {
			m.s.metrics.feedLag.Set(m.s.o.Now().Sub(m.watermark).Seconds())
		}
		if err != nil && ctx.Err() == nil {
			m.s.metrics.storageError("feed_maintainer")
			m.s.logger.Warn("feed watermark step failed", "err", err)
		}
		if moved {
			f.notify()
		}
	}
}

// step runs one step; moved reports whether the watermark advanced.
func (m *maintainer) step(ctx context.Context) (moved bool, err error) {
	s := m.s
	row, err := s.readWatermark(ctx)
	if err != nil {
		return false, err
	}
	m.watermark = row.watermark
	T := row.pending
	switch {
	case T.IsZero():
		// No watermark being established (the first step ever, or after
		// a failed one): establish one.
		if T = m.target(row.watermark); T.Sub(row.watermark) < s.o.FeedTick/2 {
			m.idle++
			return false, nil // advanced a moment ago, elsewhere
		}
		applied, err := s.cas(ctx, cqlSetPending, T, row.watermark)
		if err != nil || !applied {
			return false, err
		}
	case !m.cur.Equal(T) && m.target(T).Sub(T) < s.o.FeedTick/2:
		m.idle++
		return false, nil // established a moment ago, elsewhere
	}
	if !m.cur.Equal(T) {
		// Established by the previous step, here or elsewhere: scan for the
		// intents it covers.
		open, err := m.scan(ctx, row.watermark, T)
		if err != nil {
			return false, err
		}
		m.cur, m.open = T, open
	} else if m.open, err = m.stillOpen(ctx, m.open); err != nil {
		return false, err
	}
	if len(m.open) > 0 {
		m.idle = 0
		if m.open, err = m.repair(ctx, m.open); err != nil {
			return false, err
		}
	}
	if len(m.open) > 0 {
		// Up to just before the oldest open intent, keeping T pending so
		// nothing new lands at or below it.
		oldest := m.open[0].at
		for _, in := range m.open[1:] {
			if in.at.Before(oldest) {
				oldest = in.at
			}
		}
		next := oldest.Add(-time.Millisecond)
		if !next.After(row.watermark) {
			return false, nil
		}
		applied, err := s.cas(ctx, cqlAdvance, next, T, T)
		if err != nil || !applied {
			return false, err
		}
		m.watermark = next
		return true, nil
	}
	// Everything up to T is in: publish T and, in the same conditional
	// write, establish the next pending watermark, which the next step
	// scans (one write per step instead of two).
	var pending any
	if next := m.target(T); next.After(T) {
		pending = next
	}
	applied, err := s.cas(ctx, cqlAdvance, T, pending, T)
	if err != nil || !applied {
		return false, err
	}
	m.watermark = T
	m.open = nil
	clear(m.firstSeen)
	return true, nil
}

// target is the watermark to establish next after w: FeedLag behind this
// instance's clock, at most maxStep past w.
func (m *maintainer) target(w time.Time) time.Time {
	t := m.s.o.Now().UTC().Truncate(time.Millisecond).Add(-m.s.o.FeedLag)
	if lim := w.Add(maxStep); t.After(lim) {
		t = lim
	}
	return t
}

func (s *Store) cas(ctx context.Context, stmt string, args ...any) (bool, error) {
	applied, err := s.session.Query(stmt, args...).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return false, casErr("feed watermark", err)
	}
	return applied, nil
}

// scan returns the intents in (from, to] that are not done, over every
// shard, reading the shards in parallel.
func (m *maintainer) scan(ctx context.Context, from, to time.Time) ([]intent, error) {
	s := m.s
	f := s.feeds
	var (
		mu    sync.Mutex
		open  []intent
		first error
		wg    sync.WaitGroup
		found int
	)
	for shard := range log.FeedShards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := f.period(from); p <= f.period(to); p++ {
				iter := s.session.Query(cqlIntentsIn, shard, p, from, to).WithContext(ctx).Idempotent(true).Iter()
				var (
					in           intent
					stream       string
					attempt, fid [16]byte
					done         *bool
					local        []intent
					n            int
				)
				for iter.Scan(&in.at, &stream, &attempt, &in.bucket, &in.base, &in.count, &fid, &done) {
					n++
					if done != nil && *done {
						continue
					}
					in.shard, in.period = shard, p
					in.stream, in.attempt, in.firstID = log.StreamID(stream), attempt, fid
					in.at = in.at.UTC()
					local = append(local, in)
				}
				err := iter.Close()
				mu.Lock()
				open = append(open, local...)
				found += n
				if err != nil && first == nil {
					first = readErr("scan feed outbox", err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if found > 0 {
		m.idle = 0
	} else {
		m.idle++ // only time passed: slow down until appends come
	}
	return open, first
}

// stillOpen re-reads the done flag of intents found open earlier.
func (m *maintainer) stillOpen(ctx context.Context, open []intent) ([]intent, error) {
	var out []intent
	for _, in := range open {
		var done *bool
		err := m.s.session.Query(cqlIntentStatus, in.key()...).WithContext(ctx).Idempotent(true).Scan(&done)
		if err != nil && !errors.Is(err, gocql.ErrNotFound) {
			return nil, readErr("read feed intent", err)
		}
		if done == nil || !*done {
			out = append(out, in)
		}
	}
	return out, nil
}

// repair resolves the intents open for FeedRepairAfter and returns those
// still open.
func (m *maintainer) repair(ctx context.Context, open []intent) ([]intent, error) {
	now := time.Now()
	var out []intent
	for _, in := range open {
		seen, ok := m.firstSeen[in.attempt]
		if !ok {
			m.firstSeen[in.attempt] = now
			seen = now
		}
		if now.Sub(seen) < m.s.o.FeedRepairAfter {
			out = append(out, in)
			continue
		}
		if err := m.s.resolveIntent(ctx, in); err != nil {
			m.s.logger.Warn("resolve feed intent", "stream", in.stream, "base", in.base, "err", err)
			out = append(out, in)
			continue
		}
		delete(m.firstSeen, in.attempt)
	}
	return out, nil
}

// resolveIntent settles an intent whose appender never marked it done.
// It first fences the bucket if the append has not committed — from then
// on it never can, whatever a coordinator still retries — and otherwise
// recognises the append by its first event (id, commit time, append
// bounds). Committed appends get their feed rows from the stored events.
// It is idempotent: instances may race on one intent.
func (s *Store) resolveIntent(ctx context.Context, in intent) error {
	fence := rand.Int64N(1<<62) + 1
	cur := map[string]any{}
	applied, err := s.session.Query(cqlFence, fence, string(in.stream), in.bucket, in.base).WithContext(ctx).MapScanCAS(cur)
	if err != nil {
		return casErr("fence", err)
	}
	if !applied && cur["last_version"] == nil {
		// The bucket has no events: the intent was a bucket's first append.
		cur = map[string]any{}
		applied, err = s.session.Query(cqlFenceEmpty, fence, string(in.stream), in.bucket).WithContext(ctx).MapScanCAS(cur)
		if err != nil {
			return casErr("fence", err)
		}
	}
	s.heads.forget(in.stream)
	if applied {
		s.metrics.feedRepairs.WithLabelValues("fenced").Inc()
		return s.markDone(ctx, in) // never committed, never will
	}
	events, err := s.eventsOf(ctx, in)
	if err != nil {
		return err
	}
	if events == nil {
		s.metrics.feedRepairs.WithLabelValues("lost").Inc()
		return s.markDone(ctx, in)
	}
	s.metrics.feedRepairs.WithLabelValues("committed").Inc()
	if err := s.writeFeedRows(ctx, events); err != nil {
		return err
	}
	return s.markDone(ctx, in)
}

// eventsOf returns the events in's append committed, or nil if another
// append holds its versions.
func (s *Store) eventsOf(ctx context.Context, in intent) ([]log.RecordedEvent, error) {
	var (
		id          [16]byte
		at          time.Time
		first, last int64
	)
	err := s.session.Query(cqlEventAt, string(in.stream), in.bucket, in.base+1).WithContext(ctx).Idempotent(true).Scan(&id, &at, &first, &last)
	if errors.Is(err, gocql.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, readErr("read event", err)
	}
	if uuid.UUID(id) != in.firstID || !at.Equal(in.at) || first != in.base+1 || last != in.base+int64(in.count) {
		return nil, nil
	}
	var out []log.RecordedEvent
	err = s.readBucket(ctx, in.stream, in.bucket, in.base+1, last, func(e *log.RecordedEvent) error {
		c := *e
		c.Time = c.Time.UTC()
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) != in.count {
		return nil, fmt.Errorf("resolve intent on %s: %w: read %d of %d events", in.stream, log.ErrUnavailable, len(out), in.count)
	}
	slices.SortFunc(out, func(a, b log.RecordedEvent) int { return int(a.Version - b.Version) })
	return out, nil
}

// readBucket reads versions from..to of one bucket.
func (s *Store) readBucket(ctx context.Context, stream log.StreamID, bucket, from, to int64, fn func(*log.RecordedEvent) error) error {
	sp := partition.Span{Bucket: bucket, From: from, To: to}
	n := int(to - from + 1)
	ev := log.RecordedEvent{Stream: stream}
	_, err := s.consume(s.openSpan(ctx, stream, sp, false, n), sp, n, &ev, fn)
	return err
}
