package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/log"
)

// baseFeeds sends the feed statements of an append as the server does
// (internal/cassandra feeds.go openIntent, writeFeedRows, indexPeriod,
// markDone): an intent row and a watermark read before the conditional
// batch; after it, from cassandra.FeedWorkers writers behind a queue of
// cassandra.FeedQueue (full: the appender writes itself), the feed rows —
// one unlogged batch per feed partition (all, category, each type), the
// partition's feed_periods row once — and the intent's done mark. The
// queue is also bounded by cassandra.FeedQueueBytes of payload, as the
// server's.
//
// It runs no watermark maintainer: see bench/README.md, "The baseline".
type baseFeeds struct {
	session  *gocql.Session
	periodMs int64
	timeout  time.Duration

	jobs   chan baseFeedJob
	queued atomic.Int64 // payload bytes of the jobs in jobs
	wg     sync.WaitGroup

	// indexed remembers the feed_periods rows written, as the server's
	// per-instance cache does (cleared when full, like it).
	mu      sync.Mutex
	indexed map[feedPart]struct{}

	// failed counts feed jobs that failed after their append was
	// answered; first keeps the first error.
	failed atomic.Int64
	first  atomic.Pointer[string]
}

// maxIndexed bounds indexed, as the server bounds its cache.
const maxIndexed = 100_000

// maxIntentTries bounds how often one append moves its commit time past
// the watermark (internal/cassandra: maxIntentTries).
const maxIntentTries = 8

type feedPart struct {
	feed   string
	period int64
	shard  int
}

// baseIntent is one append attempt's outbox row (nil: plain, no outbox).
type baseIntent struct {
	shard   int
	period  int64
	at      time.Time
	stream  string
	attempt uuid.UUID
}

func (in *baseIntent) key() []any {
	return []any{in.shard, in.period, in.at, in.stream, [16]byte(in.attempt)}
}

// baseFeedJob is the feed work after one conditional batch: the events'
// feed rows (none when it was not applied), then the done mark (none for
// plain).
type baseFeedJob struct {
	in     *baseIntent
	stream string
	at     time.Time
	base   int64 // version before the first event
	ids    []uuid.UUID
	evs    []*payload
}

// size is the payload a queued job holds.
func (j *baseFeedJob) size() int64 {
	var n int64
	for _, p := range j.evs {
		n += int64(p.Size())
	}
	return n
}

// openBaseFeeds makes sure the keyspace has its watermark row (as the
// server's Open does; the feed period is the keyspace's) and starts the
// feed writers.
func openBaseFeeds(ctx context.Context, session *gocql.Session, o cassandra.Options) (*baseFeeds, error) {
	o.EnsureDefaults()
	f := &baseFeeds{
		session: session,
		timeout: o.Timeout,
		jobs:    make(chan baseFeedJob, cassandra.FeedQueue),
		indexed: make(map[feedPart]struct{}),
	}
	period, err := f.readPeriod(ctx)
	if errors.Is(err, gocql.ErrNotFound) {
		// A lag behind the clock, as the server starts it.
		start := time.Now().UTC().Truncate(time.Millisecond).Add(-o.FeedLag - time.Millisecond)
		if _, err := session.Query(cassandra.Statements.InitWatermark, start, o.FeedPeriod.Milliseconds(), start).
			WithContext(ctx).MapScanCAS(map[string]any{}); err != nil {
			return nil, fmt.Errorf("baseline feed watermark: %w", err)
		}
		period, err = f.readPeriod(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("baseline feed watermark: %w", err)
	}
	f.periodMs = period
	for range cassandra.FeedWorkers {
		f.wg.Go(func() {
			for job := range f.jobs {
				f.run(job)
				f.queued.Add(-job.size())
			}
		})
	}
	return f, nil
}

func (f *baseFeeds) readPeriod(ctx context.Context) (int64, error) {
	var (
		watermark, started time.Time
		pending            *time.Time
		period             int64
	)
	err := f.session.Query(cassandra.Statements.Watermark).WithContext(ctx).Scan(&watermark, &pending, &period, &started)
	return period, err
}

// close finishes the queued feed work.
func (f *baseFeeds) close() {
	close(f.jobs)
	f.wg.Wait()
}

func (f *baseFeeds) period(t time.Time) int64 { return t.UnixMilli() / f.periodMs }

// openIntent records the intent of an append of count events after base
// at commit time at, then reads the watermark; if at is not after it (or
// a pending one), at moves past it under a new intent, as the server
// does. It returns the intent, whose at is the commit time to write.
func (f *baseFeeds) openIntent(ctx context.Context, stream string, base int64, count int, firstID uuid.UUID, at time.Time) (*baseIntent, error) {
	shard := log.ShardOf(log.StreamID(stream))
	var (
		watermark, started time.Time
		pending            *time.Time
		period             int64
	)
	for range maxIntentTries {
		in := &baseIntent{shard: shard, period: f.period(at), at: at, stream: stream, attempt: uuid.New()}
		if err := f.session.Query(cassandra.Statements.Intent, in.shard, in.period, in.at, stream, [16]byte(in.attempt),
			int64(0), base, count, [16]byte(firstID)).WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return nil, err
		}
		pending = nil
		if err := f.session.Query(cassandra.Statements.Watermark).WithContext(ctx).Idempotent(true).
			Scan(&watermark, &pending, &period, &started); err != nil {
			return nil, err
		}
		limit := watermark
		if pending != nil && pending.After(limit) {
			limit = *pending
		}
		if at.After(limit) {
			return in, nil
		}
		f.queue(baseFeedJob{in: in}) // void this attempt
		at = limit.Add(time.Millisecond)
	}
	return nil, errors.New("the feed watermark kept moving past the commit time")
}

// committed queues the feed rows of an applied batch (in nil: plain). ids
// are copied: the caller's buffer is reused for its next append.
func (f *baseFeeds) committed(in *baseIntent, stream string, at time.Time, base int64, ids []uuid.UUID, evs []*payload) {
	f.queue(baseFeedJob{in: in, stream: stream, at: at, base: base,
		ids: append([]uuid.UUID(nil), ids...), evs: append([]*payload(nil), evs...)})
}

// void queues the done mark of an attempt that was not applied.
func (f *baseFeeds) void(in *baseIntent) { f.queue(baseFeedJob{in: in}) }

func (f *baseFeeds) queue(job baseFeedJob) {
	n := job.size()
	if f.queued.Add(n) <= cassandra.FeedQueueBytes {
		select {
		case f.jobs <- job:
			return
		default:
		}
	}
	f.queued.Add(-n)
	f.run(job) // back-pressure, as the server's appender
}

// run writes one job's feed rows and done mark. One attempt: a failure is
// counted and reported as a feed_write error of the phase.
func (f *baseFeeds) run(job baseFeedJob) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	err := f.writeRows(ctx, job)
	if err == nil && job.in != nil {
		err = f.session.Query(cassandra.Statements.IntentDone, job.in.key()...).WithContext(ctx).Idempotent(true).Exec()
	}
	if err != nil {
		if f.failed.Add(1) == 1 {
			s := err.Error()
			f.first.Store(&s)
		}
	}
}

// writeRows writes the events to each of their feeds: all, the stream's
// category, then each distinct type in order of appearance, one unlogged
// batch per feed partition.
func (f *baseFeeds) writeRows(ctx context.Context, job baseFeedJob) error {
	if len(job.evs) == 0 {
		return nil
	}
	stream := log.StreamID(job.stream)
	shard := log.ShardOf(stream)
	period := f.period(job.at)
	feeds := []string{log.AllFeed.String(), log.CategoryFeed(stream.Category()).String()}
	for _, p := range job.evs {
		if t := log.TypeFeed(p.Type).String(); !containsString(feeds, t) {
			feeds = append(feeds, t)
		}
	}
	for _, feed := range feeds {
		if err := f.index(ctx, feedPart{feed: feed, period: period, shard: shard}); err != nil {
			return err
		}
		b := f.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		typed := feed[:1] == "t"
		for i, p := range job.evs {
			if typed && feed != log.TypeFeed(p.Type).String() {
				continue
			}
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cassandra.Statements.FeedInsert, Idempotent: true,
				Args: []any{feed, period, shard, job.at, job.stream, job.base + 1 + int64(i), [16]byte(job.ids[i]),
					p.Type, p.Data, metadataOrNil(p.Metadata)}})
		}
		if err := b.ExecContext(ctx); err != nil {
			return fmt.Errorf("write feed %s: %w", feed, err)
		}
	}
	return nil
}

// index writes a feed partition's feed_periods row once. The day is the
// period's start in days since the epoch (internal/cassandra: dayOf).
func (f *baseFeeds) index(ctx context.Context, k feedPart) error {
	f.mu.Lock()
	_, done := f.indexed[k]
	f.mu.Unlock()
	if done {
		return nil
	}
	day := k.period * f.periodMs / int64(24*time.Hour/time.Millisecond)
	if err := f.session.Query(cassandra.Statements.FeedPeriod, k.feed, day, k.period, k.shard).
		WithContext(ctx).Idempotent(true).Exec(); err != nil {
		return fmt.Errorf("index feed %s: %w", k.feed, err)
	}
	f.mu.Lock()
	if len(f.indexed) >= maxIndexed {
		clear(f.indexed)
	}
	f.indexed[k] = struct{}{}
	f.mu.Unlock()
	return nil
}

// takeFailures returns the feed jobs failed since the last call and the
// first error's text.
func (f *baseFeeds) takeFailures() (int64, string) {
	n := f.failed.Swap(0)
	var s string
	if p := f.first.Swap(nil); p != nil {
		s = *p
	}
	return n, s
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
