package groups

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// ReadGroup implements log.GroupStore: one feed read over the member's
// shards, each from its checkpoint, merged by the feeds reader. Every
// position handed out (an event's, a shard's Next) is a token bound to
// the group, the member, the shard and the epoch the lease had when read.
func (s *Store) ReadGroup(ctx context.Context, r log.GroupRead) (log.GroupPage, error) {
	group, err := log.ParseGroupName(r.Group)
	if err != nil {
		return log.GroupPage{}, err
	}
	member, err := log.ParseMemberID(r.Member)
	if err != nil {
		return log.GroupPage{}, err
	}
	if err := log.ValidatePartitions(r.Partitions, s.shards); err != nil {
		return log.GroupPage{}, err
	}
	if r.Limit < 0 {
		return log.GroupPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "limit must be positive"}
	}
	g, err := s.group(ctx, group, false)
	if err != nil {
		return log.GroupPage{}, err
	}
	rows, err := s.leases(ctx, group)
	if err != nil {
		return log.GroupPage{}, err
	}
	want := r.Partitions
	if len(want) == 0 {
		want = make([]int, s.shards)
		for i := range want {
			want[i] = i
		}
	}
	// A lease is the member's while its row names it and has not lapsed
	// as this instance judges another member's (lapsed: seen unchanged for
	// the TTL and the grace). Its lease_until is not compared with this
	// instance's clock: the instance the member joined through wrote it,
	// and a member heartbeating through one an hour behind read nothing
	// through any other, its events undelivered.
	var held, lost []int
	for _, p := range want {
		if row := rows[p]; row.owner == member && !s.lapsed(group, p, row) {
			held = append(held, p)
		} else if len(r.Partitions) > 0 {
			lost = append(lost, p)
		}
	}
	if len(lost) > 0 {
		return log.GroupPage{}, fmt.Errorf("read group %s: %w", group, &log.LeaseLostError{Partitions: lost})
	}
	if len(held) == 0 {
		return log.GroupPage{}, nil
	}
	pos := make([]feeds.ShardPos, s.shards)
	for _, p := range held {
		pos[p] = rows[p].cp
	}
	read := func() (feeds.Page, error) {
		return s.o.Feeds.Read(ctx, feeds.Request{Feed: g.feed, After: feeds.NewCursor(pos), Limit: r.Limit, Shards: held, MaxBytes: r.MaxBytes})
	}
	page, err := read()
	if errors.Is(err, feeds.ErrFuturePosition) {
		// A checkpoint stored past a row's events (pastRows); else the
		// refusal stands.
		if moved, perr := s.pastRows(ctx, held, pos); perr != nil {
			err = perr
		} else if moved {
			page, err = read()
		}
	}
	if err != nil {
		return log.GroupPage{}, fmt.Errorf("read group %s: %w", group, err)
	}
	out := log.GroupPage{Events: make([]log.GroupEvent, len(page.Events)), Partitions: make([]log.PartitionRead, len(held)),
		CompleteUpTo: page.CompleteUpTo}
	for i := range page.Events {
		e := &page.Events[i]
		out.Events[i] = log.GroupEvent{Partition: e.Shard, FeedEvent: log.FeedEvent{RecordedEvent: e.RecordedEvent,
			Position: s.token(g, group, member, e.Shard, rows[e.Shard].epoch, e.Cursor.Shard(e.Shard))}}
	}
	for i, p := range held {
		out.Partitions[i] = log.PartitionRead{Partition: p, Epoch: rows[p].epoch,
			Next: s.token(g, group, member, p, rows[p].epoch, page.Next.Shard(p))}
	}
	return out, nil
}

// pastRows moves each checkpoint of pos (of shards) that is inside a log
// row but at or past its events to the start of the next row
// (feeds.Reader.PastRow), and says whether it moved any. Acks refuse such
// positions now (CheckInRow), but builds before did not: a checkpoint
// stored there was refused by every read, its partition stuck for good
// (TestGroupReadFromACheckpointPastARow). Moving it skips nothing, as it
// says the whole row was delivered; the row is read only after a read was
// refused, so reads from good checkpoints cost nothing more. The row is
// not written: the member's next ack moves it on.
func (s *Store) pastRows(ctx context.Context, shards []int, pos []feeds.ShardPos) (bool, error) {
	moved := false
	for _, p := range shards {
		next, ok, err := s.o.Feeds.PastRow(ctx, p, pos[p])
		if err != nil {
			return false, err
		}
		if ok {
			pos[p], moved = next, true
		}
	}
	return moved, nil
}
