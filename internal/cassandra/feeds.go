package cassandra

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// Feeds (docs/design-feeds.md). An append's feed rows cannot ride in its
// conditional batch, so every append attempt
//
//  1. records an intent in feed_outbox, then reads the watermark row and,
//     if its commit time is not after the watermark (or a watermark being
//     established), moves the time forward and records a new intent;
//  2. sends its conditional batch (which also conditions on the bucket's
//     fence);
//  3. after the batch, writes the feed rows and marks the intent done
//     (asynchronously: the client has its answer by then), or, when the
//     batch was not applied, marks it done at once.
//
// The maintainer (maintainer.go) advances the watermark past intents that
// are done, and resolves intents left open — by a crash after the batch, or
// a batch whose outcome is unknown — by fencing the bucket and looking at
// what the stream holds.

const (
	// schema/schema.cql: feed_outbox.
	cqlIntent       = `INSERT INTO feed_outbox (shard, period, at, stream, attempt, bucket, base, count, first_id, done) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false)`
	cqlIntentDone   = `UPDATE feed_outbox SET done = true WHERE shard = ? AND period = ? AND at = ? AND stream = ? AND attempt = ?`
	cqlIntentStatus = `SELECT done FROM feed_outbox WHERE shard = ? AND period = ? AND at = ? AND stream = ? AND attempt = ?`
	cqlIntentsIn    = `SELECT at, stream, attempt, bucket, base, count, first_id, done FROM feed_outbox WHERE shard = ? AND period = ? AND at > ? AND at <= ?`
	// schema/schema.cql: feed_watermark.
	cqlWatermark     = `SELECT watermark, pending, period_ms, started FROM feed_watermark WHERE id = 0`
	cqlInitWatermark = `INSERT INTO feed_watermark (id, watermark, period_ms, started) VALUES (0, ?, ?, ?) IF NOT EXISTS`
	cqlSetPending    = `UPDATE feed_watermark SET pending = ? WHERE id = 0 IF pending = null AND watermark = ?`
	cqlAdvance       = `UPDATE feed_watermark SET watermark = ?, pending = ? WHERE id = 0 IF pending = ?`
	// schema/schema.cql: feed_events, feed_periods.
	cqlFeedInsert = `INSERT INTO feed_events (feed, period, shard, at, stream, version, id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	cqlFeedPeriod = `INSERT INTO feed_periods (feed, day, period, shard) VALUES (?, ?, ?, ?)`
	// schema/schema.cql: events.
	cqlFence      = `UPDATE events SET fence = ? WHERE stream = ? AND bucket = ? IF last_version = ?`
	cqlFenceEmpty = `UPDATE events SET fence = ? WHERE stream = ? AND bucket = ? IF last_version = null`
	cqlEventAt    = `SELECT id, time, append_first, append_last FROM events WHERE stream = ? AND bucket = ? AND version = ?`
)

const (
	// maxIntentTries bounds how often one append attempt moves its time
	// past the watermark before giving up (unavailable).
	maxIntentTries = 8
	// feedQueue and feedQueueBytes bound the feed writes waiting on this
	// instance; beyond them the committing append writes its feed rows
	// itself (back-pressure instead of unbounded memory).
	// Jobs wait in the queue while their intents hold the watermark back,
	// so the queue is short and the pool wide: under a slow Cassandra
	// appenders write their own rows (bench subscribe measured 3-6 s feed
	// delays with 8 workers and 1,024 queued jobs).
	feedQueue      = 256
	feedQueueBytes = 64 << 20
	feedWorkers    = 32
	// dayMillis is the width of a feed_periods partition.
	dayMillis = int64(24 * time.Hour / time.Millisecond)
)

// intent identifies one append attempt's outbox row.
type intent struct {
	shard   int
	period  int64
	at      time.Time
	stream  log.StreamID
	attempt uuid.UUID
	bucket  int64
	base    int64
	count   int
	firstID uuid.UUID
}

func (in *intent) key() []any {
	return []any{in.shard, in.period, in.at, string(in.stream), [16]byte(in.attempt)}
}

// feedJob is the feed work of one intent: its events to write (none when
// the attempt did not commit), then the done mark.
type feedJob struct {
	in     intent
	events []log.RecordedEvent
}

// feeds holds the feed state of a Store.
type feeds struct {
	periodMs int64
	started  time.Time

	jobs   chan feedJob
	queued atomic.Int64 // payload bytes of the jobs in jobs
	wg     sync.WaitGroup

	// indexed remembers feed_periods rows already written (bounded by
	// clearing when full).
	mu      sync.Mutex
	indexed map[periodKey]struct{}

	// watch wakes feed subscriptions when this instance moves the
	// watermark.
	watchMu sync.Mutex
	watch   map[chan struct{}]struct{}

	kick chan struct{} // wakes the maintainer after local commits

	stop     context.CancelFunc
	stopped  chan struct{}
	closeOne sync.Once
}

type periodKey struct {
	feed   string
	period int64
	shard  int
}

// period returns the feed period holding commit time t.
func (f *feeds) period(t time.Time) int64 { return t.UnixMilli() / f.periodMs }

func (f *feeds) periodStart(p int64) time.Time { return time.UnixMilli(p * f.periodMs).UTC() }

func dayOf(periodStart time.Time) int64 { return periodStart.UnixMilli() / dayMillis }

// openFeeds reads (or, on a keyspace's first use, creates) the watermark
// row and starts the feed writers and, unless turned off, the maintainer.
func (s *Store) openFeeds(ctx context.Context) error {
	f := &feeds{
		periodMs: s.o.FeedPeriod.Milliseconds(),
		jobs:     make(chan feedJob, feedQueue),
		indexed:  make(map[periodKey]struct{}),
		watch:    make(map[chan struct{}]struct{}),
		kick:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	s.feeds = f
	row, err := s.readWatermark(ctx)
	if err != nil {
		return err
	}
	if !row.exists {
		// Start a lag behind this clock, as the maintainer would: appends
		// committing now need not move their time.
		start := s.o.Now().UTC().Truncate(time.Millisecond).Add(-s.o.FeedLag - time.Millisecond)
		applied, err := s.session.Query(cqlInitWatermark, start, f.periodMs, start).WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil {
			return fmt.Errorf("create feed watermark: %w", casErr("feed watermark", err))
		}
		if row, err = s.readWatermark(ctx); err != nil {
			return err
		}
		if !row.exists {
			return fmt.Errorf("create feed watermark: %w: row missing after insert (applied=%v)", log.ErrUnavailable, applied)
		}
	}
	if row.periodMs != f.periodMs {
		return fmt.Errorf("feed period %v differs from the keyspace's %v: it is fixed when feeds are first used", s.o.FeedPeriod, time.Duration(row.periodMs)*time.Millisecond)
	}
	f.started = row.started
	for range feedWorkers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for job := range f.jobs {
				s.runFeedJob(job)
				f.queued.Add(-job.size())
			}
		}()
	}
	mctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	if s.o.FeedMaintainer == nil || *s.o.FeedMaintainer {
		go func() {
			defer close(f.stopped)
			newMaintainer(s).run(mctx)
		}()
	} else {
		close(f.stopped)
	}
	return nil
}

// closeFeeds stops the maintainer and finishes the queued feed writes.
func (s *Store) closeFeeds() {
	f := s.feeds
	if f == nil {
		return
	}
	f.closeOne.Do(func() {
		f.stop()
		<-f.stopped
		close(f.jobs)
		f.wg.Wait()
	})
}

type watermarkRow struct {
	exists             bool
	watermark, pending time.Time
	periodMs           int64
	started            time.Time
}

func (s *Store) readWatermark(ctx context.Context) (watermarkRow, error) {
	var (
		r       watermarkRow
		pending *time.Time
	)
	err := s.session.Query(cqlWatermark).WithContext(ctx).Idempotent(true).Scan(&r.watermark, &pending, &r.periodMs, &r.started)
	if errors.Is(err, gocql.ErrNotFound) {
		return r, nil
	}
	if err != nil {
		s.metrics.storageError("read_watermark")
		return r, readErr("read feed watermark", err)
	}
	r.exists = true
	if pending != nil {
		r.pending = pending.UTC()
	}
	r.watermark, r.started = r.watermark.UTC(), r.started.UTC()
	return r, nil
}

// FeedWatermark implements log.FeedStore.
func (s *Store) FeedWatermark(ctx context.Context) (time.Time, error) {
	r, err := s.readWatermark(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return r.watermark, nil
}

// openIntent records the intent of an append attempt at commit time at
// (moved forward past the watermark if needed) and returns it. Nothing of
// the append is written yet: an error is ErrUnavailable.
func (s *Store) openIntent(ctx context.Context, stream log.StreamID, h head, included []*pending, at time.Time) (intent, error) {
	count := 0
	for _, p := range included {
		count += len(p.req.Events)
	}
	in := intent{
		shard: log.ShardOf(stream), stream: stream, bucket: h.Bucket, base: h.LastVersion,
		count: count, firstID: included[0].req.Events[0].ID,
	}
	for range maxIntentTries {
		in.at = at
		in.period = s.feeds.period(at)
		in.attempt = uuid.New()
		err := s.session.Query(cqlIntent, in.shard, in.period, in.at, string(stream), [16]byte(in.attempt),
			in.bucket, in.base, in.count, [16]byte(in.firstID)).WithContext(ctx).Idempotent(true).Exec()
		if err != nil {
			s.metrics.storageError("intent")
			return intent{}, fmt.Errorf("append to %s: record intent: %w: %v", stream, log.ErrUnavailable, err)
		}
		// Read only after the intent is stored: a maintainer establishing
		// a watermark at or past at either is seen here, or sees the
		// intent in its scan (it scans after establishing).
		row, err := s.readWatermark(ctx)
		if err != nil {
			return intent{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		limit := row.watermark
		if row.pending.After(limit) {
			limit = row.pending
		}
		if at.After(limit) {
			return in, nil
		}
		s.metrics.feedTimeMoved.Inc()
		s.feeds.void(s, in)
		at = limit.Add(time.Millisecond)
	}
	return intent{}, fmt.Errorf("append to %s: %w: the feed watermark kept moving past the commit time", stream, log.ErrUnavailable)
}

// feedEventsOf copies a committed group's events for the feed writer (the
// request's buffers are the caller's once Append returns).
func feedEventsOf(stream log.StreamID, included []*pending, at time.Time) []log.RecordedEvent {
	n, size := 0, 0
	for _, p := range included {
		n += len(p.req.Events)
		size += p.size
	}
	buf := make([]byte, 0, size)
	out := make([]log.RecordedEvent, 0, n)
	for _, p := range included {
		for i := range p.req.Events {
			ev := &p.req.Events[i]
			start := len(buf)
			buf = append(buf, ev.Data...)
			data := buf[start:len(buf):len(buf)]
			var meta []byte
			if len(ev.Metadata) > 0 {
				start = len(buf)
				buf = append(buf, ev.Metadata...)
				meta = buf[start:len(buf):len(buf)]
			}
			out = append(out, log.RecordedEvent{
				Stream: stream, ID: ev.ID, Type: ev.Type, Version: p.base + 1 + int64(i),
				Time: at, Data: data, Metadata: meta,
			})
		}
	}
	return out
}

// committed queues the feed rows of an applied attempt.
func (f *feeds) committed(s *Store, in intent, events []log.RecordedEvent) {
	f.queue(s, feedJob{in: in, events: events})
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// void queues the done mark of an attempt that did not commit.
func (f *feeds) void(s *Store, in intent) { f.queue(s, feedJob{in: in}) }

func (f *feeds) queue(s *Store, job feedJob) {
	n := job.size()
	if f.queued.Add(n) <= feedQueueBytes {
		select {
		case f.jobs <- job:
			return
		default:
		}
	}
	f.queued.Add(-n)
	s.runFeedJob(job) // back-pressure: the appender does it itself
}

// size is the payload a queued job holds.
func (j *feedJob) size() int64 {
	var n int64
	for i := range j.events {
		n += int64(len(j.events[i].Data) + len(j.events[i].Metadata))
	}
	return n
}

// runFeedJob writes a job's feed rows and marks its intent done, retrying
// a few times; if it still fails the intent stays open and the maintainer
// repairs it.
func (s *Store) runFeedJob(job feedJob) {
	if len(job.events) > 0 && s.o.BeforeFeedWrite != nil {
		s.o.BeforeFeedWrite()
	}
	var err error
	for attempt := range 4 {
		if err = backoff(context.Background(), attempt*2); err != nil {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
		err = s.writeFeedRows(ctx, job.events)
		if err == nil {
			err = s.markDone(ctx, job.in)
		}
		cancel()
		if err == nil {
			return
		}
	}
	s.metrics.storageError("feed_write")
	s.logger.Warn("feed write failed; the maintainer will repair it", "stream", job.in.stream, "base", job.in.base, "err", err)
}

func (s *Store) markDone(ctx context.Context, in intent) error {
	return s.session.Query(cqlIntentDone, in.key()...).WithContext(ctx).Idempotent(true).Exec()
}

// writeFeedRows writes events (one stream, one commit time) to every feed
// they belong to: one unlogged batch per feed partition. Rows are keyed by
// position, so writing them again (a repair racing the appender) changes
// nothing.
func (s *Store) writeFeedRows(ctx context.Context, events []log.RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	stream := events[0].Stream
	shard := log.ShardOf(stream)
	at := events[0].Time
	period := s.feeds.period(at)
	feeds := []string{log.AllFeed.String(), log.CategoryFeed(stream.Category()).String()}
	for i := range events {
		if t := log.TypeFeed(events[i].Type).String(); !containsString(feeds, t) {
			feeds = append(feeds, t)
		}
	}
	// The partitions are independent: write them in parallel, so a job
	// takes one write's latency, not one per feed (the watermark waits
	// for the slowest job).
	errs := make([]error, len(feeds))
	var wg sync.WaitGroup
	for i, feed := range feeds {
		wg.Go(func() { errs[i] = s.writeFeedPartition(ctx, feed, period, shard, events) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeFeedPartition writes the rows of one feed partition: its
// feed_periods row first (once per instance), so a reader finding rows
// always finds the index too.
func (s *Store) writeFeedPartition(ctx context.Context, feed string, period int64, shard int, events []log.RecordedEvent) error {
	if err := s.indexPeriod(ctx, periodKey{feed: feed, period: period, shard: shard}); err != nil {
		return err
	}
	stream := events[0].Stream
	b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	kind := feed[:1] // "a", "c" or "t"
	for i := range events {
		ev := &events[i]
		if kind == "t" && feed != log.TypeFeed(ev.Type).String() {
			continue
		}
		var meta []byte
		if len(ev.Metadata) > 0 {
			meta = ev.Metadata
		}
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlFeedInsert, Idempotent: true,
			Args: []any{feed, period, shard, ev.Time, string(stream), ev.Version, [16]byte(ev.ID), ev.Type, []byte(ev.Data), meta}})
	}
	if err := b.ExecContext(ctx); err != nil {
		return fmt.Errorf("write feed %s: %w", feed, err)
	}
	return nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// indexPeriod records that a feed partition has rows, once per instance.
func (s *Store) indexPeriod(ctx context.Context, k periodKey) error {
	f := s.feeds
	f.mu.Lock()
	_, done := f.indexed[k]
	f.mu.Unlock()
	if done {
		return nil
	}
	day := dayOf(f.periodStart(k.period))
	if err := s.session.Query(cqlFeedPeriod, k.feed, day, k.period, k.shard).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		return fmt.Errorf("index feed %s: %w", k.feed, err)
	}
	f.mu.Lock()
	if len(f.indexed) >= 100_000 {
		clear(f.indexed)
	}
	f.indexed[k] = struct{}{}
	f.mu.Unlock()
	return nil
}

// WatchFeeds implements log.FeedWatcher: the channel receives a value
// after this instance moves the watermark.
func (s *Store) WatchFeeds() (<-chan struct{}, func()) {
	f := s.feeds
	ch := make(chan struct{}, 1)
	f.watchMu.Lock()
	f.watch[ch] = struct{}{}
	f.watchMu.Unlock()
	return ch, func() {
		f.watchMu.Lock()
		delete(f.watch, ch)
		f.watchMu.Unlock()
	}
}

func (f *feeds) notify() {
	f.watchMu.Lock()
	defer f.watchMu.Unlock()
	for ch := range f.watch {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
