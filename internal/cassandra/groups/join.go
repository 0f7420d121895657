package groups

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// JoinGroup implements log.GroupStore. The member's row is written with a
// TTL; the shards are split among the live members (log.Assign); the
// member renews the leases it holds on its share, takes those free or
// lapsed (past LeaseGrace), and is told which it holds but must give up.
func (s *Store) JoinGroup(ctx context.Context, r log.JoinRequest) (log.Membership, error) {
	group, err := log.ParseGroupName(r.Group)
	if err != nil {
		return log.Membership{}, err
	}
	if r.Feed.Kind < log.FeedAll || r.Feed.Kind > log.FeedType {
		return log.Membership{}, &log.ValidationError{Code: log.CodeInvalidFeed, Message: "a group needs a feed: all, category/<c> or type/<t>"}
	}
	member := r.Member
	if member == "" {
		member = uuid.NewString()
	} else if member, err = log.ParseMemberID(member); err != nil {
		return log.Membership{}, err
	}
	g, err := s.ensureGroup(ctx, group, r.Feed)
	if err != nil {
		return log.Membership{}, err
	}
	ttl := s.o.LeaseTTL
	now := s.now(ctx)
	until := now.Add(ttl)
	rows, err := s.members(ctx, group)
	if err != nil {
		return log.Membership{}, err
	}
	// The leases are read before the member's row is written, so that a
	// leave racing this heartbeat cannot have its releases taken back:
	// the renewal of the member's row (conditional on its secret) fails
	// if the leave deleted the row first, and if it deleted it after, its
	// releases come after this read, and every renewal or claim below is
	// conditional on a lease row as read here (owner and epoch; a claim
	// also on lease_until), which a release has changed. Read after the
	// row's write, a lease the leave had just released read free, and the
	// heartbeat claimed it again for a member that had left, until the
	// lease lapsed (TestGroupHeartbeatRacingLeave).
	leases, err := s.leases(ctx, group)
	if err != nil {
		return log.Membership{}, err
	}
	secret, err := s.enter(ctx, group, member, r.Secret, rows, now, until)
	if err != nil {
		return log.Membership{}, err
	}
	names := []string{member} // in the list even if a skewed clock hides its row
	for _, m := range live(rows, now) {
		names = append(names, m.Member)
	}
	targets := log.Assign(names, member, s.shards)
	out := log.Membership{Group: group, Feed: r.Feed, Member: member, Secret: secret, LeaseTTL: ttl,
		Members: len(slices.Compact(slices.Sorted(slices.Values(names))))}
	// A panic of one take is raised by Wait once the others have ended
	// (not cancelled: their writes' outcomes stay known).
	var (
		mu      sync.Mutex
		wg      fanout.Group
		first   error
		claimed []claim
	)
	for shard, row := range leases {
		target := slices.Contains(targets, shard)
		// Every other member's lease is watched at every join, not only
		// those this member may take: a lapse is then seen a TTL after
		// the last renewal, whichever member joins next.
		lapsed := row.owner != "" && row.owner != member && s.lapsed(group, shard, row)
		switch {
		case row.owner == member && !target:
			out.Revoked = append(out.Revoked, log.Lease{Partition: shard, Epoch: row.epoch,
				Checkpoint: s.token(g, group, member, shard, row.epoch, row.cp), Until: row.until})
			continue
		case row.owner == member:
		case target && (row.owner == "" || lapsed):
		default:
			continue // another member's, or not ours to take
		}
		wg.Go(func() {
			held, err := s.takeLease(ctx, g, group, member, shard, row, until)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && first == nil:
				first = err
			case held != nil:
				out.Partitions = append(out.Partitions, *held)
				if row.owner != member {
					claimed = append(claimed, claim{shard: shard, epoch: held.Epoch, until: held.Until, cp: row.cp})
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) > 0 {
		if err := s.checkClaims(ctx, group, member, cmp.Or(secret, r.Secret), claimed); err != nil {
			return log.Membership{}, fmt.Errorf("join group %s: %w", group, err)
		}
	}
	if first != nil {
		return log.Membership{}, fmt.Errorf("join group %s: %w", group, first)
	}
	slices.SortFunc(out.Partitions, func(a, b log.Lease) int { return a.Partition - b.Partition })
	return out, nil
}

// lapsed reports whether another member's lease on shard, as row reads,
// may be taken: this instance has seen the row unchanged — not renewed —
// for LeaseTTL and LeaseGrace by its own monotonic clock. The member
// stopped handling a TTL after it sent the join that wrote the row (docs/
// consumer-groups.md, "One member at a time"), before this instance first
// saw it. The row's lease_until is not compared with this instance's
// clock: it is the clock of the instance that wrote it, and a lease
// written through an instance behind by more than the grace was taken at
// once while its member still handled the partition, one written through
// an instance ahead held a dead member's partitions for as long. An
// instance that has not watched a lease takes it a TTL and the grace
// after it first sees it.
func (s *Store) lapsed(group string, shard int, row leaseRow) bool {
	k := leaseKey{group: group, shard: shard}
	at := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.seen[k]
	if ok && o.owner == row.owner && o.epoch == row.epoch && o.until.Equal(row.until) {
		o.looked = at
		s.seen[k] = o
		return at.Sub(o.at) > s.o.LeaseTTL+s.o.LeaseGrace
	}
	if len(s.seen) >= maxSeenLeases {
		// Forget first what has not been looked at for long (its group
		// has no member joining here); forgetting only delays a claim.
		for k, o := range s.seen {
			if at.Sub(o.looked) > 2*(s.o.LeaseTTL+s.o.LeaseGrace) {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxSeenLeases {
			clear(s.seen)
		}
	}
	s.seen[k] = seenLease{owner: row.owner, epoch: row.epoch, until: row.until, at: at, looked: at}
	return false
}

// maxSeenLeases bounds the lease rows an instance watches (Store.seen).
const maxSeenLeases = 200_000

// leaseKey names a shard of a group; seenLease is a lease row as this
// instance first saw it (Store.seen).
type (
	leaseKey struct {
		group string
		shard int
	}
	seenLease struct {
		owner string
		epoch int64
		until time.Time
		at    time.Time // first seen so (monotonic)
		// looked is when it was last looked at (monotonic).
		looked time.Time
	}
)

// takeLease renews member's lease on shard (row says it holds it) or
// claims it (row is free or lapsed), until the given time. It returns nil
// when another member got there first.
func (s *Store) takeLease(ctx context.Context, g groupRow, group, member string, shard int, row leaseRow, until time.Time) (*log.Lease, error) {
	var (
		applied bool
		err     error
		epoch   = row.epoch
	)
	switch {
	case row.owner == member:
		applied, err = s.cas(ctx, "group renew", cqlRenew, until, group, shard, member, row.epoch)
	case !row.exists:
		epoch = firstEpoch()
		applied, err = s.cas(ctx, "group claim", cqlClaimNew, group, shard, member, epoch, until)
	default:
		epoch = row.epoch + 1
		applied, err = s.cas(ctx, "group claim", cqlClaim, member, epoch, until, group, shard, row.owner, row.epoch, row.until)
	}
	if errors.Is(err, log.ErrOutcomeUnknown) {
		// Settle it: the lease is ours exactly if the row now holds it.
		cur, rerr := s.lease(ctx, group, shard, true)
		if rerr != nil {
			return nil, err
		}
		applied, err = cur.owner == member && cur.epoch == epoch && cur.until.Equal(until), nil
	}
	if err != nil || !applied {
		return nil, err
	}
	return &log.Lease{Partition: shard, Epoch: epoch, Checkpoint: s.token(g, group, member, shard, epoch, row.cp), Until: until}, nil
}

// claim is a lease a join claimed: its shard, the epoch and lease end it
// claimed it with and the checkpoint the row held.
type claim struct {
	shard int
	epoch int64
	until time.Time
	cp    feeds.ShardPos
}

// checkClaims undoes the claims of a join whose member left meanwhile.
// Reading the leases before the member's row is written does not cover a
// lease that read free: a leave that deletes the row after that write and
// reads the leases before the claim lands releases nothing of it, and the
// claim then applies (it is conditional on the row as read, free), held
// for a member that is gone until the lease lapses
// (TestGroupClaimRacingLeave). So once its claims are in, the join reads
// the member's row at SERIAL (a leave's delete is a conditional write): if
// the row is still the one this join wrote (its secret), a leave that
// comes later reads the leases after the claims and releases them; if it
// is gone or another's, the join releases what it claimed and answers
// log.ErrNotMember. A release is also conditional on the lease end the
// claim wrote: the member id may have joined again meanwhile, as a new
// member, whose join found the claim in its name and renewed it (a new
// lease end, the same owner and epoch); that lease is the new member's
// now, and releasing it freed its partition for another member while the
// new one handled it (TestGroupClaimCheckSparesARejoinedMember). A fence
// in the leases' partition, checked by the claim's own condition, would
// cost no read but a column the leave writes and every claim names
// (docs/consumer-groups.md).
func (s *Store) checkClaims(ctx context.Context, group, member, secret string, claimed []claim) error {
	var hash []byte
	err := s.o.Session.Query(cqlMemberSecret, group, member).WithContext(ctx).Consistency(s.o.Serial).Scan(&hash)
	switch {
	case err == nil && secretMatches(hash, secret):
		return nil
	case err != nil && !errors.Is(err, gocql.ErrNotFound):
		// Not known: the claims stand, as before this check. Answering an
		// error would say nothing was written; at worst a member that
		// left holds them until they lapse.
		return nil
	}
	var errs []error
	for _, c := range claimed {
		now := s.now(ctx)
		if _, err := s.cas(ctx, "group release", cqlUnclaim, c.cp.Seq, c.cp.Index, zeroTime, now, group, c.shard, member, c.epoch, c.cp.Seq, c.cp.Index, c.until); err != nil {
			errs = append(errs, fmt.Errorf("release partition %d: %w", c.shard, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Still ErrNotMember: the member is gone whatever the releases
		// did; what they left lapses with its lease.
		return fmt.Errorf("member %s of group %s left while this join claimed partitions (%v): %w", member, group, err, log.ErrNotMember)
	}
	return fmt.Errorf("member %s of group %s left while this join claimed partitions, which it released: %w", member, group, log.ErrNotMember)
}

// LeaveGroup implements log.GroupStore: the member's row goes first, so
// the others' next joins split its shards among themselves, then its
// leases are released (checkpoints unmoved). A failure after the row went
// is log.ErrLeaveIncomplete, not the bare ErrUnavailable, whose "nothing
// was written" is false then: the member is gone, and what it still holds
// lapses or is released by a repeated leave.
func (s *Store) LeaveGroup(ctx context.Context, group, member string) error {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return err
	}
	if member, err = log.ParseMemberID(member); err != nil {
		return err
	}
	if _, err := s.group(ctx, group, false); err != nil {
		return err
	}
	if _, err := s.cas(ctx, "remove group member", cqlMemberDelete, group, member); err != nil {
		return err
	}
	if err := s.releaseAll(ctx, group, member); err != nil {
		return fmt.Errorf("leave group %s as %s: %w: %w", group, member, log.ErrLeaveIncomplete, err)
	}
	return nil
}

// releaseAll releases every lease member holds in group.
func (s *Store) releaseAll(ctx context.Context, group, member string) error {
	rows, err := s.leases(ctx, group)
	if err != nil {
		return err
	}
	var acks []log.Ack
	for shard, row := range rows {
		if row.owner == member {
			acks = append(acks, log.Ack{Partition: shard, Epoch: row.epoch, Release: true})
		}
	}
	if len(acks) == 0 {
		return nil
	}
	_, err = s.AckGroup(ctx, group, member, acks)
	// Lost only: a partial failure, which matches ErrLeaseLost too when
	// some partitions were lost, still failed the others.
	var partial *log.PartialAckError
	if errors.Is(err, log.ErrLeaseLost) && !errors.As(err, &partial) {
		return nil // taken over meanwhile: nothing left to release
	}
	return err
}
