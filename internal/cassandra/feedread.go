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

// posEvent is a feed event with its position in this store's order.
type posEvent struct {
	log.RecordedEvent
	pos log.Position
}

// posPage is a feed page before its positions become tokens.
type posPage struct {
	events       []posEvent
	next         log.Position
	completeUpTo time.Time
	atEnd        bool
}

// ReadFeed implements log.FeedStore. Its position tokens are
// log.Position's (Token, ParsePosition): not bound to a feed, as an
// event's position is the same in all three of its feeds.
func (s *Store) ReadFeed(ctx context.Context, r log.FeedRead) (log.FeedPage, error) {
	after, err := log.ParsePosition(r.After)
	if err != nil {
		return log.FeedPage{}, err
	}
	p, err := s.readFeed(ctx, r.Feed, after, r.Limit, r.Shards)
	if err != nil {
		return log.FeedPage{}, err
	}
	out := log.FeedPage{Events: make([]log.FeedEvent, len(p.events)), Next: p.next.Token(),
		CompleteUpTo: p.completeUpTo, AtEnd: p.atEnd}
	for i := range p.events {
		out.Events[i] = log.FeedEvent{RecordedEvent: p.events[i].RecordedEvent, Position: p.events[i].pos.Token()}
	}
	return out, nil
}

// FeedEnd implements log.FeedStore: the position after the watermark.
func (s *Store) FeedEnd(ctx context.Context, _ log.Feed) (string, error) {
	wm, err := s.FeedWatermark(ctx)
	if err != nil {
		return "", err
	}
	return log.After(wm).Token(), nil
}

// readFeed reads the events of feed after position after (at most limit,
// of the given shards if any). It reads the watermark first and never
// returns an event past it; periods are found through feed_periods and
// the shards of each period are read in parallel and merged in position
// order.
func (s *Store) readFeed(ctx context.Context, feed log.Feed, after log.Position, limit int, shards []int) (posPage, error) {
	if feed.Kind < log.FeedAll || feed.Kind > log.FeedType {
		return posPage{}, &log.ValidationError{Code: log.CodeInvalidFeed, Message: "invalid feed"}
	}
	if limit <= 0 {
		limit = s.o.PageSize
	}
	if limit > maxFeedPage {
		return posPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("limit must be at most %d", maxFeedPage)}
	}
	var want [log.FeedShards]bool
	for _, sh := range shards {
		if sh < 0 || sh >= log.FeedShards {
			return posPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("shard %d out of range 0..%d", sh, log.FeedShards-1)}
		}
		want[sh] = true
	}
	row, err := s.readWatermark(ctx)
	if err != nil {
		return posPage{}, err
	}
	G := row.watermark
	page := posPage{next: after, completeUpTo: G, atEnd: true}
	end := log.After(G)
	if !after.Less(end) {
		return page, nil
	}
	f := s.feeds
	from := after.Time
	if from.Before(f.started) {
		from = f.started
	}
	name := feed.String()
	p0, pEnd := f.period(from), f.period(G)
	for day := dayOf(f.periodStart(p0)); day <= dayOf(f.periodStart(pEnd)) && len(page.events) < limit; day++ {
		parts, err := s.feedPartitions(ctx, name, day, p0, pEnd, shards != nil, &want)
		if err != nil {
			return posPage{}, err
		}
		for _, pp := range parts {
			evs, err := s.readFeedPeriod(ctx, name, pp.period, pp.shards, after, G, limit-len(page.events))
			if err != nil {
				return posPage{}, err
			}
			page.events = append(page.events, evs...)
			if len(page.events) >= limit {
				break
			}
		}
	}
	if len(page.events) >= limit {
		page.events = page.events[:limit]
		page.next = page.events[limit-1].pos
		page.atEnd = false
	} else {
		page.next = end
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
func (s *Store) readFeedPeriod(ctx context.Context, feed string, period int64, shards []int, pos log.Position, G time.Time, limit int) ([]posEvent, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []posEvent
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
				local  []posEvent
				e      posEvent
				stream string
			)
			for iter.Scan(&e.Time, &stream, &e.Version, (*[16]byte)(&e.ID), &e.Type, &e.Data, &e.Metadata) {
				e.Stream = log.StreamID(stream)
				e.Time = e.Time.UTC()
				e.pos = log.PositionOf(&e.RecordedEvent)
				local = append(local, e)
				e = posEvent{}
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
	slices.SortFunc(all, func(a, b posEvent) int { return cmpPos(a.pos, b.pos) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
