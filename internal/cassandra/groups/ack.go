package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// AckGroup implements log.GroupStore. Every position is checked before
// any acknowledgement is applied: it must be a token handed to this
// member of this group for that partition under that epoch, and within
// the shard's committed log, inside a row only before its last event (else
// *log.ValidationError invalid_position
// and nothing moves). Then each acknowledgement is applied on its own,
// fenced by the lease's epoch; when one fails after others were applied or
// refused as lost, the error is a *log.PartialAckError naming them.
func (s *Store) AckGroup(ctx context.Context, group, member string, acks []log.Ack) ([]log.AckResult, error) {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return nil, err
	}
	if member, err = log.ParseMemberID(member); err != nil {
		return nil, err
	}
	if err := log.ValidateAcks(acks, s.shards); err != nil {
		return nil, err
	}
	// The group's row as it is now, not as cached: after the group was
	// deleted and created again, a cached id would pass the old
	// incarnation's tokens. (One read just before the delete still does:
	// the new incarnation's lease rows then refuse the old epochs,
	// firstEpoch.)
	g, err := s.readGroup(ctx, group, false)
	if err != nil {
		return nil, err
	}
	pos, err := s.positions(ctx, g, group, member, acks)
	if err != nil {
		return nil, err
	}
	// A panic of one ack is raised by Wait once the others have ended
	// (not cancelled: their writes' outcomes stay known).
	var (
		mu    sync.Mutex
		wg    fanout.Group
		out   []log.AckResult
		lost  []int
		first error
	)
	for i, a := range acks {
		wg.Go(func() {
			res, err := s.ack(ctx, g, group, member, a, pos[i])
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
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b log.AckResult) int { return a.Partition - b.Partition })
	if first != nil {
		if len(out) > 0 || len(lost) > 0 {
			// Not "nothing was written": say which were, and which
			// partitions were lost (the error then matches ErrLeaseLost).
			acked := make([]int, len(out))
			for i, r := range out {
				acked[i] = r.Partition
			}
			slices.Sort(lost)
			first = &log.PartialAckError{Acked: acked, Lost: lost, Err: first}
		}
		return out, fmt.Errorf("ack group %s: %w", group, first)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		return out, fmt.Errorf("ack group %s: %w", group, &log.LeaseLostError{Partitions: lost})
	}
	return out, nil
}

// positions decodes and checks the acknowledged positions ("" is nil:
// move nothing). The shards' log ends are read in parallel.
func (s *Store) positions(ctx context.Context, g groupRow, group, member string, acks []log.Ack) ([]*feeds.ShardPos, error) {
	out := make([]*feeds.ShardPos, len(acks))
	for i, a := range acks {
		if a.Position == "" {
			continue
		}
		p, err := s.tokens.Decode(a.Position, group, g.id, member)
		if err != nil {
			return nil, err
		}
		if p.Shard != a.Partition || p.Epoch != a.Epoch {
			return nil, &log.ValidationError{Code: log.CodeInvalidPosition, Message: fmt.Sprintf(
				"position of partition %d was handed out for partition %d under epoch %d, not epoch %d", a.Partition, p.Shard, p.Epoch, a.Epoch)}
		}
		out[i] = &p.Pos
	}
	// A token is only minted from rows read, so this refuses only a leaked
	// secret or a keyspace restored to an earlier state: never trust a
	// position past the log, nor one inside a row but past its events
	// (CheckInRow: every read from such a checkpoint is refused, so it
	// would stop the partition for good). Refused rather than moved to the
	// next row: what the member was handed never says so, and the row is
	// read only for a position inside one.
	errs := make([]error, len(acks))
	wg, ectx := fanout.WithContext(ctx) // a read's panic stops the others; Wait raises it
	for i, p := range out {
		if p == nil {
			continue
		}
		wg.Go(func() {
			end, err := s.o.Feeds.ShardEnd(ectx, acks[i].Partition)
			switch {
			case err != nil:
				errs[i] = err
			case less(end, *p):
				errs[i] = &log.ValidationError{Code: log.CodeInvalidPosition, Message: fmt.Sprintf(
					"position of partition %d is past the end of its log", acks[i].Partition)}
			default:
				errs[i] = s.o.Feeds.CheckInRow(ectx, acks[i].Partition, *p)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		var ve *log.ValidationError
		if errors.As(err, &ve) {
			return nil, ve
		}
		return nil, err
	}
	return out, nil
}

// ack applies one acknowledgement: it moves the checkpoint forward to pos
// (never back; nil moves nothing) and, with Release, frees the shard, if
// member still holds it at a.Epoch; log.ErrLeaseLost otherwise. A lapsed
// lease nobody took over still accepts it: no other member can have read
// past the checkpoint.
func (s *Store) ack(ctx context.Context, g groupRow, group, member string, a log.Ack, pos *feeds.ShardPos) (log.AckResult, error) {
	res := log.AckResult{Partition: a.Partition, Epoch: a.Epoch}
	serial := false
	var last error
	// held: member is known to have held the shard at a.Epoch, so a
	// release at that epoch can only be its own (cqlRelease is conditional
	// on the owner). A released row no longer names its owner: a position
	// (a token handed to this member for this shard under a.Epoch) proves
	// it, or an earlier round of this call that saw the member hold it.
	held := pos != nil
	for range maxAckTries {
		row, err := s.lease(ctx, group, a.Partition, serial)
		if err != nil {
			if last != nil {
				return res, last // the unknown outcome stays unknown
			}
			return res, err
		}
		next := canon(row.cp)
		if pos != nil && less(next, *pos) {
			next = canon(*pos)
		}
		if a.Release && held && row.exists && row.owner == "" && row.epoch == a.Epoch && next == canon(row.cp) {
			// Released at this epoch, by this member, with the position
			// in: an earlier round (or a repeated request) did it. Any
			// other member is told what a non-holder is (lease lost).
			res.Checkpoint = s.token(g, group, member, a.Partition, a.Epoch, next)
			res.Released = true
			return res, nil
		}
		if row.owner != member || row.epoch != a.Epoch {
			return res, log.ErrLeaseLost
		}
		held = true
		res.Checkpoint = s.token(g, group, member, a.Partition, a.Epoch, next)
		if !a.Release && next == canon(row.cp) {
			return res, nil // already there: a repeated or older ack
		}
		now := s.now(ctx)
		var applied bool
		if a.Release {
			applied, err = s.cas(ctx, "group release", cqlRelease, next.Seq, next.Index, zeroTime, now, group, a.Partition, member, a.Epoch, row.cp.Seq, row.cp.Index)
		} else {
			applied, err = s.cas(ctx, "group ack", cqlAck, next.Seq, next.Index, now, group, a.Partition, member, a.Epoch, row.cp.Seq, row.cp.Index)
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
