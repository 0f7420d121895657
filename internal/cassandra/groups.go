package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// Consumer groups (docs/consumer-groups.md). Each partition of a group is
// one row of group_partitions holding its lease (owner, epoch, lease_until)
// and its checkpoint. Every change of a row is a conditional write on that
// row alone:
//
//   - claim:   owner, epoch+1, lease  IF owner, epoch, lease_until as read
//     (the lease had lapsed, or the partition was free)
//   - renew:   lease                  IF owner = me AND epoch = E
//   - ack:     checkpoint             IF owner = me AND epoch = E AND checkpoint as read
//   - release: owner = '', checkpoint IF owner = me AND epoch = E AND checkpoint as read
//
// so a member whose partition was taken over can neither renew it nor move
// its checkpoint: the epoch is a fencing token. A conditional write that
// times out may still be applied later; it is never resent blindly: the
// row is re-read at SERIAL consistency (which completes or supersedes any
// proposal in flight) and the decision is taken again from what it holds.

const (
	// schema/schema.cql: consumer_groups.
	cqlGroupCreate = `INSERT INTO consumer_groups (group_name, feed, created) VALUES (?, ?, ?) IF NOT EXISTS`
	cqlGroupRead   = `SELECT feed, created FROM consumer_groups WHERE group_name = ?`
	cqlGroupList   = `SELECT group_name FROM consumer_groups`
	// schema/schema.cql: group_members.
	cqlMemberPut    = `INSERT INTO group_members (group_name, member, expires) VALUES (?, ?, ?) USING TTL ?`
	cqlMemberDelete = `DELETE FROM group_members WHERE group_name = ? AND member = ?`
	cqlMembers      = `SELECT member, expires FROM group_members WHERE group_name = ?`
	// schema/schema.cql: group_partitions.
	cqlParts        = `SELECT shard, owner, epoch, lease_until, checkpoint FROM group_partitions WHERE group_name = ? AND shard IN ?`
	cqlPart         = `SELECT owner, epoch, lease_until, checkpoint FROM group_partitions WHERE group_name = ? AND shard = ?`
	cqlPartClaimNew = `INSERT INTO group_partitions (group_name, shard, owner, epoch, lease_until, checkpoint) VALUES (?, ?, ?, 1, ?, '') IF NOT EXISTS`
	cqlPartClaim    = `UPDATE group_partitions SET owner = ?, epoch = ?, lease_until = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND lease_until = ?`
	cqlPartRenew    = `UPDATE group_partitions SET lease_until = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ?`
	cqlPartAck      = `UPDATE group_partitions SET checkpoint = ?, acked_at = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND checkpoint = ?`
	cqlPartRelease  = `UPDATE group_partitions SET checkpoint = ?, owner = '', lease_until = ?, acked_at = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND checkpoint = ?`
)

// zeroTime is lease_until of a released partition: long past.
var zeroTime = time.UnixMilli(0).UTC()

// memberRowGrace keeps a member row past its expiry (TTL seconds), so a
// member is never dropped by the TTL while its expires is still ahead.
const memberRowGrace = 60 * time.Second

var _ log.GroupStore = (*Store)(nil)

// allPartitions lists 0..GroupPartitions-1 (bound to IN queries).
var allPartitions = func() []int {
	ps := make([]int, log.GroupPartitions)
	for i := range ps {
		ps[i] = i
	}
	return ps
}()

// groups holds the consumer group state of a Store.
type groups struct {
	// feeds caches each group's feed and creation time: a group row never
	// changes once written.
	mu    sync.Mutex
	known map[string]groupRow

	stop    context.CancelFunc
	stopped chan struct{}
}

type groupRow struct {
	feed    log.Feed
	created time.Time
}

// partRow is one row of group_partitions; a missing row reads as a free
// partition at epoch 0 with its checkpoint at the start.
type partRow struct {
	exists     bool
	owner      string
	epoch      int64
	until      time.Time
	checkpoint string // position token
}

func (r partRow) position() log.Position {
	p, err := log.ParsePosition(r.checkpoint)
	if err != nil {
		return log.Position{} // only this store writes tokens
	}
	return p
}

// openGroups starts the lag refresher when metrics are collected.
func (s *Store) openGroups() {
	g := &groups{known: make(map[string]groupRow), stopped: make(chan struct{})}
	s.groups = g
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	if s.o.GroupLagRefresh <= 0 || s.o.Registerer == nil {
		close(g.stopped)
		return
	}
	go func() {
		defer close(g.stopped)
		s.refreshLag(ctx)
	}()
}

func (s *Store) closeGroups() {
	if g := s.groups; g != nil {
		g.stop()
		<-g.stopped
	}
}

// now is the store's clock at Cassandra's precision.
func (s *Store) now() time.Time { return s.o.Now().UTC().Truncate(time.Millisecond) }

// groupRow returns a group's feed, or ErrGroupNotFound.
func (s *Store) groupRow(ctx context.Context, group string, serial bool) (groupRow, error) {
	g := s.groups
	g.mu.Lock()
	row, ok := g.known[group]
	g.mu.Unlock()
	if ok {
		return row, nil
	}
	var feed string
	q := s.session.Query(cqlGroupRead, group).WithContext(ctx).Idempotent(true)
	if serial {
		q = q.Consistency(s.serial)
	}
	err := q.Scan(&feed, &row.created)
	if errors.Is(err, gocql.ErrNotFound) {
		return groupRow{}, fmt.Errorf("group %s: %w", group, log.ErrGroupNotFound)
	}
	if err != nil {
		s.metrics.storageError("group_read")
		return groupRow{}, readErr("read group", err)
	}
	if row.feed, err = log.ParseFeedPath(feed); err != nil {
		return groupRow{}, fmt.Errorf("group %s: stored feed %q: %w", group, feed, errInternal)
	}
	row.created = row.created.UTC()
	g.mu.Lock()
	if len(g.known) >= 10_000 {
		clear(g.known)
	}
	g.known[group] = row
	g.mu.Unlock()
	return row, nil
}

// ensureGroup creates group with feed unless it exists, and checks that it
// follows feed.
func (s *Store) ensureGroup(ctx context.Context, group string, feed log.Feed) (groupRow, error) {
	row, err := s.groupRow(ctx, group, false)
	if errors.Is(err, log.ErrGroupNotFound) {
		_, cerr := s.session.Query(cqlGroupCreate, group, feed.String(), s.now()).WithContext(ctx).MapScanCAS(map[string]any{})
		if cerr != nil {
			s.metrics.storageError("group_create")
			if cerr = casErr("create group", cerr); errors.Is(cerr, log.ErrUnavailable) {
				return groupRow{}, cerr
			}
		}
		// Applied, lost to a concurrent creator, or unknown: a SERIAL read
		// settles which row is there.
		row, err = s.groupRow(ctx, group, true)
		if errors.Is(err, log.ErrGroupNotFound) && cerr != nil {
			return groupRow{}, cerr
		}
	}
	if err != nil {
		return groupRow{}, err
	}
	if row.feed != feed {
		return groupRow{}, fmt.Errorf("group %s follows feed %s, not %s: %w", group, row.feed, feed, log.ErrGroupFeedMismatch)
	}
	return row, nil
}

// liveMembers returns the members whose expiry is after now, sorted.
func (s *Store) liveMembers(ctx context.Context, group string, now time.Time) ([]log.MemberInfo, error) {
	iter := s.session.Query(cqlMembers, group).WithContext(ctx).Idempotent(true).Iter()
	var (
		out     []log.MemberInfo
		member  string
		expires time.Time
	)
	for iter.Scan(&member, &expires) {
		if expires.After(now) {
			out = append(out, log.MemberInfo{Member: member, Expires: expires.UTC()})
		}
	}
	if err := iter.Close(); err != nil {
		s.metrics.storageError("group_members")
		return nil, readErr("read group members", err)
	}
	return out, nil
}

// readParts reads every partition row of group.
func (s *Store) readParts(ctx context.Context, group string) ([log.GroupPartitions]partRow, error) {
	var (
		rows  [log.GroupPartitions]partRow
		shard int
		r     partRow
	)
	iter := s.session.Query(cqlParts, group, allPartitions).WithContext(ctx).Idempotent(true).Iter()
	for iter.Scan(&shard, &r.owner, &r.epoch, &r.until, &r.checkpoint) {
		if shard >= 0 && shard < log.GroupPartitions {
			r.exists, r.until = true, r.until.UTC()
			rows[shard] = r
		}
		r = partRow{}
	}
	if err := iter.Close(); err != nil {
		s.metrics.storageError("group_partitions")
		return rows, readErr("read group partitions", err)
	}
	return rows, nil
}

// readPart reads one partition row; serial settles any conditional write
// in flight on it first.
func (s *Store) readPart(ctx context.Context, group string, p int, serial bool) (partRow, error) {
	r := partRow{exists: true}
	q := s.session.Query(cqlPart, group, p).WithContext(ctx).Idempotent(true)
	if serial {
		q = q.Consistency(s.serial)
	}
	err := q.Scan(&r.owner, &r.epoch, &r.until, &r.checkpoint)
	if errors.Is(err, gocql.ErrNotFound) {
		return partRow{}, nil
	}
	if err != nil {
		s.metrics.storageError("group_partition")
		return partRow{}, readErr("read group partition", err)
	}
	r.until = r.until.UTC()
	return r, nil
}

// partCAS runs a conditional write on a partition row. An error is
// ErrUnavailable (not applied) or ErrOutcomeUnknown (maybe applied).
func (s *Store) partCAS(ctx context.Context, op, stmt string, args ...any) (bool, error) {
	send, answer := true, true
	if s.groupFault != nil {
		send, answer = s.groupFault(op)
	}
	applied := false
	var err error
	if send {
		applied, err = s.session.Query(stmt, args...).WithContext(ctx).MapScanCAS(map[string]any{})
	}
	if !send || !answer {
		err = fmt.Errorf("%s: %w: lost (fault injection)", op, log.ErrOutcomeUnknown)
	}
	if err != nil {
		s.metrics.storageError(op)
		return false, casErr(op, err)
	}
	return applied, nil
}

// JoinGroup implements log.GroupStore.
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
	if _, err := s.ensureGroup(ctx, group, r.Feed); err != nil {
		return log.Membership{}, err
	}
	ttl := s.o.GroupLeaseTTL
	now := s.now()
	until := now.Add(ttl)
	rowTTL := int(math.Ceil((ttl + memberRowGrace).Seconds()))
	if err := s.session.Query(cqlMemberPut, group, member, until, rowTTL).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		s.metrics.storageError("group_member")
		return log.Membership{}, readErr("record group member", err)
	}
	live, err := s.liveMembers(ctx, group, now)
	if err != nil {
		return log.Membership{}, err
	}
	names := []string{member} // in the list even if a skewed clock hides its row
	for _, m := range live {
		names = append(names, m.Member)
	}
	targets := log.Assign(names, member, log.GroupPartitions)
	rows, err := s.readParts(ctx, group)
	if err != nil {
		return log.Membership{}, err
	}

	out := log.Membership{Group: group, Feed: r.Feed, Member: member, LeaseTTL: ttl, Members: len(slices.Compact(slices.Sorted(slices.Values(names))))}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	for p := range log.GroupPartitions {
		row := rows[p]
		target := slices.Contains(targets, p)
		lease := log.Lease{Partition: p, Epoch: row.epoch, Checkpoint: row.checkpoint, Until: row.until}
		switch {
		case row.owner == member && !target:
			out.Revoked = append(out.Revoked, lease)
			continue
		case row.owner == member:
		case target && (row.owner == "" || now.After(row.until.Add(s.o.GroupLeaseGrace))):
		default:
			continue // another member's, or not ours to take
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			held, err := s.takeLease(ctx, group, member, p, row, until)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && first == nil:
				first = err
			case held != nil:
				out.Partitions = append(out.Partitions, *held)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return log.Membership{}, fmt.Errorf("join group %s: %w", group, first)
	}
	slices.SortFunc(out.Partitions, func(a, b log.Lease) int { return a.Partition - b.Partition })
	return out, nil
}

// takeLease renews member's lease on partition p (row says it holds it) or
// claims it (row is free or lapsed), until the given time. It returns nil
// when another member got there first.
func (s *Store) takeLease(ctx context.Context, group, member string, p int, row partRow, until time.Time) (*log.Lease, error) {
	var (
		applied bool
		err     error
		epoch   = row.epoch
	)
	switch {
	case row.owner == member:
		applied, err = s.partCAS(ctx, "group_renew", cqlPartRenew, until, group, p, member, row.epoch)
	case !row.exists:
		epoch = 1
		applied, err = s.partCAS(ctx, "group_claim", cqlPartClaimNew, group, p, member, until)
	default:
		epoch = row.epoch + 1
		applied, err = s.partCAS(ctx, "group_claim", cqlPartClaim, member, epoch, until, group, p, row.owner, row.epoch, row.until)
	}
	if errors.Is(err, log.ErrOutcomeUnknown) {
		// Settle it: the lease is ours exactly if the row now holds it.
		cur, rerr := s.readPart(ctx, group, p, true)
		if rerr != nil {
			return nil, err
		}
		applied, err = cur.owner == member && cur.epoch == epoch && cur.until.Equal(until), nil
	}
	if err != nil || !applied {
		return nil, err
	}
	return &log.Lease{Partition: p, Epoch: epoch, Checkpoint: row.checkpoint, Until: until}, nil
}

// LeaveGroup implements log.GroupStore.
func (s *Store) LeaveGroup(ctx context.Context, group, member string) error {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return err
	}
	if member, err = log.ParseMemberID(member); err != nil {
		return err
	}
	if _, err := s.groupRow(ctx, group, false); err != nil {
		return err
	}
	// Gone from the member list first, so the others' next heartbeats
	// assign its partitions among themselves.
	if err := s.session.Query(cqlMemberDelete, group, member).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		s.metrics.storageError("group_member")
		return readErr("remove group member", err)
	}
	rows, err := s.readParts(ctx, group)
	if err != nil {
		return err
	}
	var acks []log.Ack
	for p, row := range rows {
		if row.owner == member {
			acks = append(acks, log.Ack{Partition: p, Epoch: row.epoch, Release: true})
		}
	}
	if len(acks) == 0 {
		return nil
	}
	_, err = s.AckGroup(ctx, group, member, acks)
	if errors.Is(err, log.ErrLeaseLost) {
		return nil // taken over meanwhile: nothing left to release
	}
	return err
}
