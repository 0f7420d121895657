package cassandra

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/eventlog/eventlog/internal/log"
)

// maxAckTries bounds the rounds of one acknowledgement: each re-reads the
// row (at SERIAL after an unknown outcome) and decides again.
const maxAckTries = 4

// ReadGroup implements log.GroupStore. The member's partitions are read
// with one feed read per distinct checkpoint (partitions acknowledged
// together share one), in parallel, and merged in feed order.
func (s *Store) ReadGroup(ctx context.Context, r log.GroupRead) (log.GroupPage, error) {
	group, err := log.ParseGroupName(r.Group)
	if err != nil {
		return log.GroupPage{}, err
	}
	member, err := log.ParseMemberID(r.Member)
	if err != nil {
		return log.GroupPage{}, err
	}
	if err := log.ValidatePartitions(r.Partitions, log.GroupPartitions); err != nil {
		return log.GroupPage{}, err
	}
	limit := r.Limit
	if limit <= 0 {
		limit = s.o.PageSize
	}
	if limit > maxFeedPage {
		return log.GroupPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("limit must be at most %d", maxFeedPage)}
	}
	g, err := s.groupRow(ctx, group, false)
	if err != nil {
		return log.GroupPage{}, err
	}
	rows, err := s.readParts(ctx, group)
	if err != nil {
		return log.GroupPage{}, err
	}
	now := s.now()
	want := r.Partitions
	if len(want) == 0 {
		want = allPartitions
	}
	var (
		byCheckpoint = map[string][]int{}
		lost         []int
	)
	for _, p := range want {
		row := rows[p]
		if row.owner == member && now.Before(row.until) {
			byCheckpoint[row.checkpoint] = append(byCheckpoint[row.checkpoint], p)
		} else if len(r.Partitions) > 0 {
			lost = append(lost, p)
		}
	}
	if len(lost) > 0 {
		return log.GroupPage{}, fmt.Errorf("read group %s: %w", group, &log.LeaseLostError{Partitions: lost})
	}

	type part struct {
		shards []int
		after  log.Position
		page   posPage
		err    error
	}
	parts := make([]*part, 0, len(byCheckpoint))
	for _, shards := range byCheckpoint {
		parts = append(parts, &part{shards: shards, after: rows[shards[0]].position()})
	}
	var wg sync.WaitGroup
	for _, pt := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt.page, pt.err = s.readFeed(ctx, g.feed, pt.after, limit, pt.shards)
		}()
	}
	wg.Wait()

	var (
		out    log.GroupPage
		events []posEvent
	)
	for _, pt := range parts {
		if pt.err != nil {
			return log.GroupPage{}, fmt.Errorf("read group %s: %w", group, pt.err)
		}
		if out.CompleteUpTo.IsZero() || pt.page.completeUpTo.Before(out.CompleteUpTo) {
			out.CompleteUpTo = pt.page.completeUpTo
		}
		events = append(events, pt.page.events...)
	}
	slices.SortFunc(events, func(a, b posEvent) int { return cmpPos(a.pos, b.pos) })
	// Cut at limit. Each feed read returned, in order, every event of its
	// shards up to its Next; the merged page holds every event of every
	// read up to the cut (a full read ends at or after the cut, else the
	// page would hold limit events before it), so each partition is
	// covered up to the earlier of its read's Next and the cut.
	var cut *log.Position
	if len(events) > limit {
		events = events[:limit]
		cut = &events[limit-1].pos
	}
	out.Events = make([]log.GroupEvent, len(events))
	for i := range events {
		e := &events[i]
		out.Events[i] = log.GroupEvent{FeedEvent: log.FeedEvent{RecordedEvent: e.RecordedEvent, Position: e.pos.Token()}, Partition: log.ShardOf(e.Stream)}
	}
	for _, pt := range parts {
		next := pt.page.next
		if cut != nil && cut.Less(next) {
			next = *cut
		}
		if next.Less(pt.after) {
			next = pt.after
		}
		for _, p := range pt.shards {
			out.Partitions = append(out.Partitions, log.PartitionRead{Partition: p, Epoch: rows[p].epoch, Next: next.Token()})
		}
	}
	slices.SortFunc(out.Partitions, func(a, b log.PartitionRead) int { return a.Partition - b.Partition })
	return out, nil
}

func cmpPos(a, b log.Position) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// AckGroup implements log.GroupStore.
func (s *Store) AckGroup(ctx context.Context, group, member string, acks []log.Ack) ([]log.AckResult, error) {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return nil, err
	}
	if member, err = log.ParseMemberID(member); err != nil {
		return nil, err
	}
	if err := log.ValidateAcks(acks, log.GroupPartitions); err != nil {
		return nil, err
	}
	for _, a := range acks {
		if _, err := log.ParsePosition(a.Position); err != nil {
			return nil, err
		}
	}
	if _, err := s.groupRow(ctx, group, false); err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		out   []log.AckResult
		lost  []int
		first error
	)
	for _, a := range acks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.ack(ctx, group, member, a)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, log.ErrLeaseLost):
				lost = append(lost, a.Partition)
			case err != nil:
				if first == nil || errors.Is(err, log.ErrOutcomeUnknown) {
					first = err
				}
			default:
				out = append(out, res)
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b log.AckResult) int { return a.Partition - b.Partition })
	if first != nil {
		return out, fmt.Errorf("ack group %s: %w", group, first)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		return out, fmt.Errorf("ack group %s: %w", group, &log.LeaseLostError{Partitions: lost})
	}
	return out, nil
}

// ack applies one acknowledgement: it moves the checkpoint forward (never
// back) and, with Release, frees the partition, if member still holds it
// at a.Epoch; ErrLeaseLost otherwise. A lapsed lease that nobody took over
// still accepts acknowledgements: no other member can have read past the
// checkpoint.
func (s *Store) ack(ctx context.Context, group, member string, a log.Ack) (log.AckResult, error) {
	res := log.AckResult{Partition: a.Partition, Epoch: a.Epoch}
	pos, err := log.ParsePosition(a.Position)
	if err != nil {
		return res, err
	}
	serial := false
	var last error
	for range maxAckTries {
		row, err := s.readPart(ctx, group, a.Partition, serial)
		if err != nil {
			if last != nil {
				return res, last // the unknown outcome stays unknown
			}
			return res, err
		}
		cur := row.position()
		if a.Release && row.exists && row.owner == "" && row.epoch == a.Epoch && !cur.Less(pos) {
			// Released at this epoch with the position in: an earlier
			// round (or a repeated request) did it.
			res.Checkpoint, res.Released = cur.Token(), true
			return res, nil
		}
		if row.owner != member || row.epoch != a.Epoch {
			return res, log.ErrLeaseLost
		}
		next := cur
		if cur.Less(pos) {
			next = pos
		}
		res.Checkpoint = next.Token()
		if !a.Release && next == cur {
			return res, nil // already there: a repeated or older ack
		}
		now := s.now()
		var applied bool
		if a.Release {
			applied, err = s.partCAS(ctx, "group_release", cqlPartRelease, next.Token(), zeroTime, now, group, a.Partition, member, a.Epoch, row.checkpoint)
		} else {
			applied, err = s.partCAS(ctx, "group_ack", cqlPartAck, next.Token(), now, group, a.Partition, member, a.Epoch, row.checkpoint)
		}
		switch {
		case errors.Is(err, log.ErrOutcomeUnknown):
			last, serial = err, true // re-read at SERIAL and decide again
		case err != nil:
			return res, err
		case applied:
			res.Released = a.Release
			return res, nil
		}
		// Not applied: the row changed under us (a concurrent ack of the
		// same member); read it again.
	}
	if last == nil {
		last = fmt.Errorf("ack partition %d: %w: the checkpoint kept changing", a.Partition, log.ErrUnavailable)
	}
	return res, last
}
