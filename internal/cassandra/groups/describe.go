package groups

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// DescribeGroup implements log.GroupStore. A shard's lag is the number of
// the feed's events after its checkpoint in the shard's log as read now,
// counted by reading them (the logs keep no per-feed counts), up to
// LagCap over the whole group. Watermark is the earliest CompleteUpTo of
// those reads: the lag counts every event committed up to it.
func (s *Store) DescribeGroup(ctx context.Context, group string) (log.GroupInfo, error) {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return log.GroupInfo{}, err
	}
	g, err := s.group(ctx, group, false)
	if errors.Is(err, log.ErrGroupNotFound) {
		// Deleted (perhaps through another instance): its gauge goes.
		s.lag.DeleteLabelValues(group)
	}
	if err != nil {
		return log.GroupInfo{}, err
	}
	now := s.now(ctx)
	members, err := s.liveMembers(ctx, group, now)
	if err != nil {
		return log.GroupInfo{}, err
	}
	rows, err := s.leases(ctx, group)
	if err != nil {
		return log.GroupInfo{}, err
	}
	info := log.GroupInfo{Group: group, Feed: g.feed, Created: g.created, Members: members,
		Partitions: make([]log.PartitionInfo, s.shards)}
	var (
		budget atomic.Int64
		errs   = make([]error, s.shards)
		marks  = make([]time.Time, s.shards)
	)
	budget.Store(int64(s.o.LagCap))
	wg, cctx := fanout.WithContext(ctx) // a count's panic stops the others; Wait raises it
	for shard, row := range rows {
		pi := &info.Partitions[shard]
		*pi = log.PartitionInfo{Partition: shard, Owner: row.owner, Epoch: row.epoch,
			Checkpoint: s.token(g, group, row.owner, shard, row.epoch, row.cp)}
		if row.owner != "" {
			pi.LeaseUntil = row.until
		}
		wg.Go(func() {
			pi.Lag, pi.LagCapped, marks[shard], errs[shard] = s.count(cctx, g.feed, shard, row.cp, &budget)
		})
	}
	wg.Wait()
	for shard, err := range errs {
		if err != nil {
			return log.GroupInfo{}, err
		}
		pi := info.Partitions[shard]
		info.Lag += pi.Lag
		info.LagCapped = info.LagCapped || pi.LagCapped
		if m := marks[shard]; !m.IsZero() && (info.Watermark.IsZero() || m.Before(info.Watermark)) {
			info.Watermark = m
		}
	}
	if info.Watermark.IsZero() {
		info.Watermark = now
	}
	s.lag.WithLabelValues(group).Set(float64(info.Lag))
	return info, nil
}

// lagPageBytes bounds the events one read of a lag count holds (a read
// per shard at once): without it a page of 10,000 events of up to a MiB
// each stayed in memory only to be counted.
const lagPageBytes = 4 << 20

// count reads feed's events of shard after from to the log's end, taking
// one from budget each; capped when the budget ran out first.
func (s *Store) count(ctx context.Context, feed log.Feed, shard int, from feeds.ShardPos, budget *atomic.Int64) (n int64, capped bool, mark time.Time, err error) {
	pos := make([]feeds.ShardPos, s.shards)
	pos[shard] = from
	after := feeds.NewCursor(pos)
	first := true // a read from the checkpoint, not from a page's Next
	for {
		left := budget.Load()
		if left <= 0 {
			return n, true, mark, nil
		}
		p, err := s.o.Feeds.Read(ctx, feeds.Request{Feed: feed, After: after, Limit: int(min(left, 10_000)), Shards: []int{shard},
			MaxBytes: lagPageBytes})
		if errors.Is(err, feeds.ErrFuturePosition) && first {
			first = false
			// A checkpoint stored past a row's events (pastRows).
			if moved, perr := s.pastRows(ctx, []int{shard}, pos); perr != nil {
				err = perr
			} else if moved {
				after = feeds.NewCursor(pos)
				continue
			}
		}
		first = false
		if err != nil {
			return n, false, mark, err
		}
		got := int64(len(p.Events))
		left = budget.Add(-got)
		n, mark, after = n+got, p.CompleteUpTo, p.Next
		switch {
		case p.AtEnd:
			return n, false, mark, nil
		case left <= 0:
			return n, true, mark, nil
		}
	}
}
