package cassandra

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

const (
	// schema/schema.cql: feed_periods, feed_events.
	cqlFeedPeriods  = `SELECT period, shard FROM feed_periods WHERE feed = ? AND day = ? AND period >= ? AND period <= ?`
	cqlFeedAfterPos = `SELECT at, stream, version, id, type, data, metadata FROM feed_events WHERE feed = ? AND period = ? AND shard = ? AND (at, stream, version) > (?, ?, ?) AND (at) <= (?) LIMIT ?`
	cqlFeedAfterAt  = `SELECT at, stream, version, id, type, data, metadata FROM feed_events WHERE feed = ? AND period = ? AND shard = ? AND at > ? AND at <= ? LIMIT ?`
)

// maxFeedPage bounds one feed read.
const maxFeedPage = 10_000

var _ log.FeedStore = (*Store)(nil)

// ReadFeed implements log.FeedStore. It reads the watermark first and never
// returns an event past it; periods are found through feed_periods and the
// shards of each period are read in parallel and merged in position order.
func (s *Store) ReadFeed(ctx context.Context, r log.FeedRead) (log.FeedPage, error) {
	if r.Feed.Kind < log.FeedAll || r.Feed.Kind > log.FeedType {
		return log.FeedPage{}, &log.ValidationError{Code: log.CodeInvalidFeed, Message: "invalid feed"}
	}
	limit := r.Limit
	if limit <= 0 {
		limit = s.o.PageSize
	}
	if limit > maxFeedPage {
		return log.FeedPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("limit must be at most %d", maxFeedPage)}
	}
	var want [log.FeedShards]bool
	for _, sh := range r.Shards {
		if sh < 0 || sh >= log.FeedShards {
			return log.FeedPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("shard %d out of range 0..%d", sh, log.FeedShards-1)}
		}
		want[sh] = true
	}
	row, err := s.readWatermark(ctx)
	if err != nil {
		return log.FeedPage{}, err
	}
	G := row.watermark
	page := log.FeedPage{Next: r.After, CompleteUpTo: G}
	end := log.After(G)
	if !r.After.Less(end) {
		return page, nil
	}
	f := s.feeds
	from := r.After.Time
	if from.Before(f.started) {
		from = f.started
	}
	feed := r.Feed.String()
	p0, pEnd := f.period(from), f.period(G)
	for day := dayOf(f.periodStart(p0)); day <= dayOf(f.periodStart(pEnd)) && len(page.Events) < limit; day++ {
		parts, err := s.feedPartitions(ctx, feed, day, p0, pEnd, r.Shards != nil, &want)
		if err != nil {
			return log.FeedPage{}, err
		}
		for _, pp := range parts {
			evs, err := s.readFeedPeriod(ctx, feed, pp.period, pp.shards, r.After, G, limit-len(page.Events))
			if err != nil {
				return log.FeedPage{}, err
			}
			page.Events = append(page.Events, evs...)
			if len(page.Events) >= limit {
				break
			}
		}
	}
	if len(page.Events) >= limit {
		page.Events = page.Events[:limit]
		page.Next = page.Events[limit-1].Position
	} else {
		page.Next = end
	}
	return page, nil
}

type periodShards struct {
	period int64
	shards []int
}

// feedPartitions lists a day's non-empty partitions of feed between periods
// p0 and pEnd, in period order.
func (s *Store) feedPartitions(ctx context.Context, feed string, day, p0, pEnd int64, filter bool, want *[log.FeedShards]bool) ([]periodShards, error) {
	iter := s.session.Query(cqlFeedPeriods, feed, day, p0, pEnd).WithContext(ctx).Idempotent(true).Iter()
	var (
		out    []periodShards
		period int64
		shard  int
	)
	for iter.Scan(&period, &shard) {
		if filter && !want[shard] {
			continue
		}
		if n := len(out); n > 0 && out[n-1].period == period {
			out[n-1].shards = append(out[n-1].shards, shard)
			continue
		}
		out = append(out, periodShards{period: period, shards: []int{shard}})
	}
	if err := iter.Close(); err != nil {
		s.metrics.storageError("read_feed")
		return nil, readErr("read feed index", err)
	}
	return out, nil
}

// readFeedPeriod reads up to limit events after pos and at or before G
// from each shard of one period, in parallel, and merges them.
func (s *Store) readFeedPeriod(ctx context.Context, feed string, period int64, shards []int, pos log.Position, G time.Time, limit int) ([]log.FeedEvent, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []log.FeedEvent
		first error
	)
	for _, shard := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var q *gocql.Query
			switch {
			case pos.Stream != "":
				q = s.session.Query(cqlFeedAfterPos, feed, period, shard, pos.Time, string(pos.Stream), pos.Version, G, limit)
			default:
				after := pos.Time
				if after.IsZero() {
					after = time.UnixMilli(0)
				}
				q = s.session.Query(cqlFeedAfterAt, feed, period, shard, after, G, limit)
			}
			iter := q.WithContext(ctx).Idempotent(true).PageSize(min(limit, s.o.PageSize)).Iter()
			var (
				local  []log.FeedEvent
				e      log.FeedEvent
				stream string
			)
			for iter.Scan(&e.Time, &stream, &e.Version, (*[16]byte)(&e.ID), &e.Type, &e.Data, &e.Metadata) {
				e.Stream = log.StreamID(stream)
				e.Time = e.Time.UTC()
				e.Position = log.PositionOf(&e.RecordedEvent)
				local = append(local, e)
				e = log.FeedEvent{}
			}
			err := iter.Close()
			mu.Lock()
			defer mu.Unlock()
			all = append(all, local...)
			if err != nil && first == nil {
				s.metrics.storageError("read_feed")
				first = readErr("read feed", err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	slices.SortFunc(all, func(a, b log.FeedEvent) int {
		switch {
		case a.Position.Less(b.Position):
			return -1
		case b.Position.Less(a.Position):
			return 1
		}
		return 0
	})
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
