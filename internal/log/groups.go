package log

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Consumer groups (docs/consumer-groups.md). A group follows one feed with
// durable checkpoints. Its partitions are the store's shards (the
// keyspace's shard count): every stream's events are in one shard, in
// order, so the member holding a partition
// handles all of those streams' events, in order, and no other member does
// while its lease lasts. Leases carry an epoch that grows with every change
// of owner; an acknowledgement names the epoch it was read under and is
// refused once the partition has moved on (fencing).

// MaxGroupNameLen bounds group names and member ids.
const MaxGroupNameLen = 100

var (
	// ErrGroupNotFound: no member ever joined the group.
	ErrGroupNotFound = errors.New("group not found")
	// ErrGroupFeedMismatch: a join named another feed than the one the
	// group was created with (a group's feed never changes).
	ErrGroupFeedMismatch = errors.New("group follows another feed")
	// ErrLeaseLost is matched by *LeaseLostError.
	ErrLeaseLost = errors.New("partition lease lost")
	// ErrMemberSecret: a request for a member without that member's
	// secret (missing, wrong, or the member is gone: join again).
	ErrMemberSecret = errors.New("member secret missing or wrong")
	// ErrNotMember is an ErrMemberSecret (errors.Is matches both) for a
	// member that is not in the group: it left, was evicted or expired.
	// Leaving again is not an error.
	ErrNotMember = fmt.Errorf("%w: not a member (left, evicted or expired)", ErrMemberSecret)
	// ErrLeaveIncomplete: a leave removed the member (it is no longer in
	// the group) and then failed (it also matches the cause, ErrUnavailable
	// or ErrOutcomeUnknown) before every partition the member held was
	// released. Those are taken once their leases lapse; a repeated leave
	// releases them (it needs no secret once the member is gone).
	ErrLeaveIncomplete = errors.New("the member left, but not every partition it held was released")
	// ErrTooManyGroups: creating a group would pass the keyspace's cap.
	ErrTooManyGroups = errors.New("too many consumer groups")
	// ErrTooManyMembers: a new member would pass the group's cap.
	ErrTooManyMembers = errors.New("too many members in the group")
)

// LeaseLostError refuses a read or acknowledgement for partitions the
// member does not hold (any more) under the epoch it named: another member
// may own them now. Acknowledgements for the other partitions of the same
// request were applied.
type LeaseLostError struct {
	Partitions []int
}

func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("the member does not hold partitions %v (lease expired, released or moved to another member)", e.Partitions)
}

// Is makes errors.Is(err, ErrLeaseLost) true.
func (e *LeaseLostError) Is(target error) bool { return target == ErrLeaseLost }

// PartialAckError is an acknowledgement request that failed part way:
// Err (an ErrUnavailable or ErrOutcomeUnknown, which it matches) after the
// acknowledgements of partitions Acked were applied; those of Lost were
// refused (not held, as LeaseLostError, which it then matches too:
// errors.Is(err, ErrLeaseLost)), and the others were not applied
// (ErrUnavailable) or may have been (ErrOutcomeUnknown). Repeating the
// request is safe: an applied acknowledgement is applied again as a no-op.
type PartialAckError struct {
	Acked, Lost []int
	Err         error
}

func (e *PartialAckError) Error() string {
	if len(e.Lost) > 0 {
		return fmt.Sprintf("acknowledgements of partitions %v applied, partitions %v not held, then: %v", e.Acked, e.Lost, e.Err)
	}
	return fmt.Sprintf("acknowledgements of partitions %v applied, then: %v", e.Acked, e.Err)
}

// Unwrap gives Err and, with partitions lost, their *LeaseLostError: a
// caller that tests for ErrLeaseLost must learn that some were refused.
func (e *PartialAckError) Unwrap() []error {
	if len(e.Lost) == 0 {
		return []error{e.Err}
	}
	return []error{e.Err, &LeaseLostError{Partitions: e.Lost}}
}

// Validation codes of group requests.
const (
	CodeInvalidGroup  = "invalid_group"
	CodeInvalidMember = "invalid_member"
)

// ParseGroupName validates a group name: the characters of a stream id,
// at most MaxGroupNameLen.
func ParseGroupName(s string) (string, error) {
	if !validName(s) {
		return "", invalid(CodeInvalidGroup, "group name must be 1-%d characters from A-Z a-z 0-9 _ . : @ + = -, starting with a letter or digit", MaxGroupNameLen)
	}
	return s, nil
}

// ParseMemberID validates a member id, with the rules of group names.
func ParseMemberID(s string) (string, error) {
	if !validName(s) {
		return "", invalid(CodeInvalidMember, "member id must be 1-%d characters from A-Z a-z 0-9 _ . : @ + = -, starting with a letter or digit", MaxGroupNameLen)
	}
	return s, nil
}

func validName(s string) bool {
	if len(s) > MaxGroupNameLen {
		return false
	}
	_, err := ParseStreamID(s)
	return err == nil
}

// ParseFeedPath parses a feed in its path form ("all", "category/user",
// "type/UserCreated"), as Feed.String writes it.
func ParseFeedPath(s string) (Feed, error) {
	kind, name, _ := strings.Cut(s, "/")
	return ParseFeed(kind, name)
}

// Assign returns member's share of partitions 0..partitions-1 among
// members: partition p goes to the (p mod n)-th of the sorted, distinct
// members, so every member computes the same balanced split (sizes differ
// by at most one) from the same list. A member not in the list gets none.
func Assign(members []string, member string, partitions int) []int {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	i, ok := slices.BinarySearch(ms, member)
	if !ok {
		return nil
	}
	var out []int
	for p := i; p < partitions; p += len(ms) {
		out = append(out, p)
	}
	return out
}

// JoinRequest joins a member to a group, or renews its membership (a
// heartbeat: the same request, sent again well within the lease TTL).
type JoinRequest struct {
	Group  string
	Feed   Feed   // the group's feed; it is created with it on first join
	Member string // "" generates an id
	// Secret is the member's secret (Membership.Secret), required to
	// renew a member of a store with member secrets (GroupSecrets); ""
	// on the join that creates the member.
	Secret string
}

// Lease is a member's hold on one partition.
type Lease struct {
	Partition int
	// Epoch grows with every change of the partition's owner; reads and
	// acknowledgements carry it, so a member whose lease moved on is
	// refused.
	Epoch int64
	// Checkpoint is the last acknowledged position, as a token of the
	// store's: the partition's events at or before it are done.
	Checkpoint string
	// Until is when the lease ends unless renewed, by the store's clock.
	// A member should stop handling the partition's events a TTL after it
	// sent the join that granted or renewed the lease, by its own clock.
	Until time.Time
}

// Membership is the answer to a join: the partitions the member holds now
// and those it must give up.
type Membership struct {
	Group  string
	Feed   Feed
	Member string
	// Secret is set by the join that created the member, on a store with
	// member secrets: every later request for the member presents it.
	Secret   string
	LeaseTTL time.Duration
	// Members is the number of live members, this one included.
	Members int
	// Partitions are held and renewed for LeaseTTL.
	Partitions []Lease
	// Revoked are held but assigned to another member: they are not
	// renewed. The member finishes the event in hand, acknowledges, and
	// releases them (Ack.Release), or they lapse at the end of the lease.
	Revoked []Lease
}

// GroupRead reads the events of a member's partitions after their
// checkpoints, at most Limit of them (0: the store's page size), merged in
// feed order. Partitions, if set, names the partitions to read; each must
// be held (else *LeaseLostError). Empty reads every partition the member
// holds. MaxBytes, if positive, ends the page early, after the first
// event that brings the events' data, metadata and names to MaxBytes
// (a page holds at least one event); the partitions' Next then stop at
// the last event returned.
type GroupRead struct {
	Group      string
	Member     string
	Partitions []int
	Limit      int
	MaxBytes   int
}

// GroupEvent is a feed event with the partition it belongs to.
type GroupEvent struct {
	FeedEvent
	Partition int
}

// PartitionRead says how far a read covered one partition: every event of
// the partition up to Next (a position token) was returned (or is at or
// before its checkpoint). Acknowledging Next, once those events are
// handled, moves the checkpoint past the stretch read, even if it held no
// events.
type PartitionRead struct {
	Partition int
	Epoch     int64
	Next      string
}

// GroupPage is the answer to a GroupRead.
type GroupPage struct {
	Events       []GroupEvent
	Partitions   []PartitionRead
	CompleteUpTo time.Time
}

// Ack moves a partition's checkpoint to Position (never back: an older
// position is accepted and changes nothing) if the member still holds the
// partition at Epoch. Position is a token the store handed the member (an
// event's Position or a PartitionRead's Next); "" moves nothing. A token
// the store did not hand out, or one past the committed log, is a
// *ValidationError with code CodeInvalidPosition. Release also gives the
// partition up, after moving the checkpoint.
type Ack struct {
	Partition int
	Epoch     int64
	Position  string
	Release   bool
}

// AckResult is the state of a partition after an Ack.
type AckResult struct {
	Partition  int
	Epoch      int64
	Checkpoint string // token
	Released   bool
}

// MemberInfo is a live member.
type MemberInfo struct {
	Member  string
	Expires time.Time
}

// PartitionInfo describes one partition of a group.
type PartitionInfo struct {
	Partition int
	// Owner is the member holding the lease; "" when free. A lease past
	// LeaseUntil is still shown until another member takes it.
	Owner      string
	Epoch      int64
	LeaseUntil time.Time
	Checkpoint string // token
	// Lag is the number of events after Checkpoint and up to the feed
	// watermark, counted up to the store's cap; LagCapped says the count
	// stopped there (the lag is at least Lag).
	Lag       int64
	LagCapped bool
}

// GroupInfo describes a group.
type GroupInfo struct {
	Group      string
	Feed       Feed
	Created    time.Time
	Members    []MemberInfo
	Partitions []PartitionInfo
	// Lag is the sum of the partitions' lags, at the watermark Watermark.
	Lag       int64
	LagCapped bool
	Watermark time.Time
}

// GroupStore keeps consumer groups. Delivery is at least once: an event is
// delivered again when its member stops (or loses its lease) after
// handling it and before acknowledging it. All methods return
// *ValidationError for bad input and ErrUnavailable when the store cannot
// be reached; a conditional write whose outcome stays unknown after
// re-reading is ErrOutcomeUnknown (repeating the request is safe).
type GroupStore interface {
	// JoinGroup adds or renews a member, creating the group on its first
	// join (ErrGroupFeedMismatch if it exists with another feed). It
	// renews the leases of the member's assigned partitions, takes those
	// that are free or whose lease has lapsed, and reports the ones it
	// holds but must give up.
	JoinGroup(ctx context.Context, r JoinRequest) (Membership, error)
	// ReadGroup reads a member's partitions from their checkpoints.
	// Errors: ErrGroupNotFound, *LeaseLostError.
	ReadGroup(ctx context.Context, r GroupRead) (GroupPage, error)
	// AckGroup applies acknowledgements (at most one per partition), each
	// on its own. Errors: ErrGroupNotFound, *LeaseLostError naming the
	// partitions refused (the others were applied and are in the result).
	AckGroup(ctx context.Context, group, member string, acks []Ack) ([]AckResult, error)
	// LeaveGroup releases every partition the member holds and removes
	// it. Leaving twice is not an error. Errors: ErrGroupNotFound,
	// ErrLeaveIncomplete (removed, some partitions not released).
	LeaveGroup(ctx context.Context, group, member string) error
	// DescribeGroup returns the group's members, partitions and lag.
	// Errors: ErrGroupNotFound.
	DescribeGroup(ctx context.Context, group string) (GroupInfo, error)
	// GroupFeed returns the feed the group follows, so a caller can check
	// read access to it before serving the group. A group's feed never
	// changes. Errors: ErrGroupNotFound.
	GroupFeed(ctx context.Context, group string) (Feed, error)
}

// GroupSecrets is implemented by group stores whose members hold secrets
// (the shard-log store): the join that creates a member answers its
// secret (Membership.Secret), and heartbeats (JoinRequest.Secret), reads,
// acknowledgements and leaving present it.
type GroupSecrets interface {
	// CheckMember returns nil if secret is member's in group. Errors:
	// ErrMemberSecret (ErrNotMember, which matches it too, when the
	// member does not exist or expired), ErrGroupNotFound,
	// ErrUnavailable.
	CheckMember(ctx context.Context, group, member, secret string) error
}

// GroupDeleter is implemented by group stores that can delete a group.
type GroupDeleter interface {
	// DeleteGroup removes a group with its members, leases and
	// checkpoints; a later join creates it anew, and no position token of
	// the old one is accepted by the new. Errors: ErrGroupNotFound.
	DeleteGroup(ctx context.Context, group string) error
}

// GroupSummary is a group in a listing.
type GroupSummary struct {
	Group   string
	Feed    Feed
	Created time.Time
	// Members is the number of live members.
	Members int
}

// GroupQuery selects a page of groups, in name order.
type GroupQuery struct {
	// After is the last group of the previous page (its Next): the page
	// starts after it.
	After string
	// Limit is the most groups in the page (> 0).
	Limit int
	// Visible, if set, drops the groups it refuses (the caller's scopes)
	// before they count against Limit.
	Visible func(group string, feed Feed) bool
}

// GroupList is a page of groups. Next is the last group of the page when
// more follow (pass it as After), "" at the end.
type GroupList struct {
	Groups []GroupSummary
	Next   string
}

// GroupLister is implemented by group stores that list their groups.
type GroupLister interface {
	// ListGroups returns a page of the groups, in name order, with their
	// live member counts (lag is not counted: DescribeGroup reads the
	// logs for it). Errors: *ValidationError, ErrUnavailable.
	ListGroups(ctx context.Context, q GroupQuery) (GroupList, error)
}

// ValidateAcks checks acks on a group of partitions partitions: partitions
// in range and distinct, epochs positive, at least one.
func ValidateAcks(acks []Ack, partitions int) error {
	if len(acks) == 0 {
		return invalid(CodeInvalidRequest, "no acknowledgement given")
	}
	seen := make([]bool, partitions)
	for _, a := range acks {
		if a.Partition < 0 || a.Partition >= partitions {
			return invalid(CodeInvalidRequest, "partition %d out of range 0..%d", a.Partition, partitions-1)
		}
		if seen[a.Partition] {
			return invalid(CodeInvalidRequest, "partition %d acknowledged twice in one request", a.Partition)
		}
		seen[a.Partition] = true
		if a.Epoch < 1 {
			return invalid(CodeInvalidRequest, "epoch must be at least 1 (the epoch of the lease the events were read under)")
		}
	}
	return nil
}

// ValidatePartitions checks a list of partitions of a group of partitions
// partitions: in range and distinct.
func ValidatePartitions(ps []int, partitions int) error {
	seen := make([]bool, partitions)
	for _, p := range ps {
		if p < 0 || p >= partitions {
			return invalid(CodeInvalidRequest, "partition %d out of range 0..%d", p, partitions-1)
		}
		if seen[p] {
			return invalid(CodeInvalidRequest, "partition %d listed twice", p)
		}
		seen[p] = true
	}
	return nil
}
