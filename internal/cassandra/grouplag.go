package cassandra

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// A group's lag is counted, not estimated: positions are (time, stream,
// version), so "events between the checkpoint and the watermark" has no
// arithmetic shortcut. The count reads only the clustering key of each
// event, and stops at GroupLagCap events per group.

const (
	// schema/schema.cql: feed_events, the key only.
	cqlFeedKeysAfterPos = `SELECT at FROM feed_events WHERE feed = ? AND period = ? AND shard = ? AND (at, stream, version) > (?, ?, ?) AND (at) <= (?)`
	cqlFeedKeysAfterAt  = `SELECT at FROM feed_events WHERE feed = ? AND period = ? AND shard = ? AND at > ? AND at <= ?`
)

// DescribeGroup implements log.GroupStore. It also sets the group's lag
// gauge.
func (s *Store) DescribeGroup(ctx context.Context, group string) (log.GroupInfo, error) {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return log.GroupInfo{}, err
	}
	g, err := s.groupRow(ctx, group, false)
	if err != nil {
		return log.GroupInfo{}, err
	}
	members, err := s.liveMembers(ctx, group, s.now())
	if err != nil {
		return log.GroupInfo{}, err
	}
	rows, err := s.readParts(ctx, group)
	if err != nil {
		return log.GroupInfo{}, err
	}
	wm, err := s.FeedWatermark(ctx)
	if err != nil {
		return log.GroupInfo{}, err
	}
	info := log.GroupInfo{Group: group, Feed: g.feed, Created: g.created, Members: members, Watermark: wm,
		Partitions: make([]log.PartitionInfo, log.GroupPartitions)}
	var (
		budget atomic.Int64
		wg     sync.WaitGroup
		errs   [log.GroupPartitions]error
	)
	budget.Store(int64(s.o.GroupLagCap))
	for p, row := range rows {
		pi := &info.Partitions[p]
		*pi = log.PartitionInfo{Partition: p, Owner: row.owner, Epoch: row.epoch, Checkpoint: row.checkpoint}
		if row.owner != "" {
			pi.LeaseUntil = row.until
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pi.Lag, pi.LagCapped, errs[p] = s.countFeed(ctx, g.feed, p, row.position(), wm, &budget)
		}()
	}
	wg.Wait()
	for p := range info.Partitions {
		if errs[p] != nil {
			return log.GroupInfo{}, fmt.Errorf("group %s lag: %w", group, errs[p])
		}
		info.Lag += info.Partitions[p].Lag
		info.LagCapped = info.LagCapped || info.Partitions[p].LagCapped
	}
	s.metrics.groupLag.WithLabelValues(group).Set(float64(info.Lag))
	return info, nil
}

// countFeed counts the events of one shard of feed after position after
// and at or before the watermark wm, drawing one unit of budget per event;
// capped reports that the budget ran out first.
func (s *Store) countFeed(ctx context.Context, feed log.Feed, shard int, after log.Position, wm time.Time, budget *atomic.Int64) (n int64, capped bool, err error) {
	if !after.Less(log.After(wm)) {
		return 0, false, nil
	}
	f := s.feeds
	from := after.Time
	if from.Before(f.started) {
		from = f.started
	}
	name := feed.String()
	p0, pEnd := f.period(from), f.period(wm)
	var want [log.FeedShards]bool
	want[shard] = true
	for day := dayOf(f.periodStart(p0)); day <= dayOf(f.periodStart(pEnd)); day++ {
		parts, err := s.feedPartitions(ctx, name, day, p0, pEnd, true, &want)
		if err != nil {
			return n, false, err
		}
		for _, pp := range parts {
			args := []any{name, pp.period, shard, after.Time, string(after.Stream), after.Version, wm}
			stmt := cqlFeedKeysAfterPos
			if after.Stream == "" {
				at := after.Time
				if at.IsZero() {
					at = time.UnixMilli(0)
				}
				args, stmt = []any{name, pp.period, shard, at, wm}, cqlFeedKeysAfterAt
			}
			iter := s.session.Query(stmt, args...).WithContext(ctx).Idempotent(true).PageSize(s.o.PageSize).Iter()
			var at time.Time
			for iter.Scan(&at) {
				if budget.Add(-1) < 0 {
					iter.Close()
					return n, true, nil
				}
				n++
			}
			if err := iter.Close(); err != nil {
				s.metrics.storageError("group_lag")
				return n, false, readErr("count feed events", err)
			}
		}
	}
	return n, false, nil
}

// refreshLag recomputes every group's lag gauge every GroupLagRefresh
// until ctx ends. Every instance does it; the gauges agree up to the
// moment each was taken.
func (s *Store) refreshLag(ctx context.Context) {
	t := time.NewTicker(s.o.GroupLagRefresh)
	defer t.Stop()
	for {
		if err := s.refreshLagOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("group lag refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Store) refreshLagOnce(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	iter := s.session.Query(cqlGroupList).WithContext(lctx).Idempotent(true).Iter()
	var (
		names []string
		name  string
	)
	for iter.Scan(&name) {
		names = append(names, name)
	}
	err := iter.Close()
	cancel()
	if err != nil {
		s.metrics.storageError("group_list")
		return readErr("list groups", err)
	}
	for _, g := range names {
		gctx, cancel := context.WithTimeout(ctx, 3*s.o.Timeout)
		_, err := s.DescribeGroup(gctx, g)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
