package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Consumer groups (the low-level calls; Consume builds on them). A group
// follows one feed; its partitions, the keyspace's shards (the server's
// --shards, 8 by default), split the feed by stream, and each member
// holds a lease on some of them (members beyond the partitions stay
// idle). Reads return a member's events
// after its partitions' checkpoints; acknowledgements move the
// checkpoints, naming the lease epoch the events were read under, and are
// refused with ErrLeaseLost once the partition has moved on.

// Problem codes of the group endpoints.
const (
	CodeGroupNotFound     = "group_not_found"
	CodeGroupFeedMismatch = "group_feed_mismatch"
	CodeLeaseLost         = "lease_lost"
	CodeInvalidGroup      = "invalid_group"
	CodeInvalidMember     = "invalid_member"
	// CodeInvalidMemberSecret: a member's request without the secret its
	// first join answered, or with another.
	CodeInvalidMemberSecret = "invalid_member_secret"
	// CodeLeaveIncomplete: a leave removed the member but did not release
	// every partition it held (503; repeating the leave is safe).
	CodeLeaveIncomplete = "leave_incomplete"
)

var (
	// ErrGroupNotFound: no member ever joined the group.
	ErrGroupNotFound = sentinel(http.StatusNotFound, CodeGroupNotFound)
	// ErrGroupFeedMismatch: the group exists and follows another feed.
	ErrGroupFeedMismatch = sentinel(http.StatusConflict, CodeGroupFeedMismatch)
	// ErrLeaseLost: the member does not hold (some of) the partitions it
	// read or acknowledged; the *Problem's Partitions names them.
	// Acknowledgements of the other partitions were applied.
	ErrLeaseLost = sentinel(http.StatusConflict, CodeLeaseLost)
	// ErrInvalidMemberSecret: the request lacked the member's secret (or
	// sent another). A join whose answer was lost after it created the
	// member cannot be repeated without it: join under a new member id
	// (the orphan expires with its lease).
	ErrInvalidMemberSecret = sentinel(http.StatusForbidden, CodeInvalidMemberSecret)
	// ErrLeaveIncomplete: the member left, but releasing the partitions it
	// held failed; they lapse with their leases, and LeaveGroup again
	// releases them at once.
	ErrLeaveIncomplete = sentinel(http.StatusServiceUnavailable, CodeLeaveIncomplete)
)

// groupPath is /v1/groups/{group}/rest… with the names escaped.
func groupPath(group string, rest ...string) string {
	p := "/v1/groups/" + url.PathEscape(group)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// JoinOptions say how a member joins a group.
type JoinOptions struct {
	// Feed is the group's feed (AllFeed, CategoryFeed, TypeFeed). The
	// first join creates the group with it; later joins must name the
	// same one (else ErrGroupFeedMismatch).
	Feed string
	// Member is the member's id; "" lets the server generate one
	// (Membership.Member). A member id must be used by one process at a
	// time: the server cannot tell two processes with one id apart.
	Member string
	// Secret is the member's secret, for a process that renews a member
	// another Client created (Membership.Secret). The Client remembers
	// the secrets its joins were answered or given, and sends them itself
	// with the member's later requests.
	Secret string
}

// PartitionLease is a member's lease on one partition.
type PartitionLease struct {
	Partition int   `json:"partition"`
	Epoch     int64 `json:"epoch"`
	// Checkpoint is the position last acknowledged ("" = the start).
	Checkpoint string `json:"checkpoint"`
	// LeaseUntil is when the lease ends by the server's clock. Judge it by
	// your own clock instead: a lease granted by a join sent at t lasts at
	// least until t + LeaseTTL.
	LeaseUntil time.Time `json:"lease_until"`
}

// Membership is the answer to a join or heartbeat.
type Membership struct {
	Group  string `json:"group"`
	Feed   string `json:"feed"`
	Member string `json:"member"`
	// Secret is answered by the join that created the member, on a server
	// with member secrets (the shard-log write path): its heartbeats,
	// reads, acknowledgements and leave need it (403 otherwise). The
	// Client sends it on its own; keep it to go on as this member from
	// another process.
	Secret string `json:"secret,omitempty"`
	// LeaseTTL is how long leases last after the join was sent; heartbeat
	// (join again) every third of it.
	LeaseTTL time.Duration `json:"-"`
	// Members counts the live members.
	Members int `json:"members"`
	// Partitions are the partitions the member holds, renewed.
	Partitions []PartitionLease `json:"partitions"`
	// Revoked are held but assigned to another member and not renewed:
	// finish the event in hand, acknowledge, and release them (Ack with
	// Release).
	Revoked []PartitionLease `json:"revoked"`
}

// JoinGroup joins member opts.Member to group, or renews its membership
// and leases (a heartbeat is the same call). It is retried like a read:
// joining again is harmless.
func (c *Client) JoinGroup(ctx context.Context, group string, opts JoinOptions) (*Membership, error) {
	body, err := json.Marshal(map[string]string{"feed": opts.Feed, "member": opts.Member})
	if err != nil {
		return nil, err
	}
	var m struct {
		Membership
		LeaseTTLMs int64 `json:"lease_ttl_ms"`
	}
	secret := opts.Secret
	if secret == "" && opts.Member != "" {
		secret = c.secret(group, opts.Member)
	}
	r := &request{method: http.MethodPost, path: groupPath(group, "members"), body: body, contentType: mediaJSON, write: true, secret: secret}
	if err := c.call(ctx, r, &m); err != nil {
		return nil, fmt.Errorf("eventlog: join group %s: %w", group, err)
	}
	if m.Secret != "" {
		secret = m.Secret // a new member (or a new incarnation of it)
	}
	if secret != "" {
		c.secrets.Store(memberKey{group, m.Member}, secret)
	}
	m.Membership.LeaseTTL = time.Duration(m.LeaseTTLMs) * time.Millisecond
	return &m.Membership, nil
}

// GroupReadOptions select a group read.
type GroupReadOptions struct {
	// Partitions limits the read to these partitions, which must all be
	// held (else ErrLeaseLost). Empty reads every partition held.
	Partitions []int
	// Limit bounds the events returned; 0 takes the server's default.
	Limit int
}

// GroupEvent is an event of a group read.
type GroupEvent struct {
	FeedEvent
	// Partition is the group partition of the event's stream.
	Partition int `json:"partition"`
}

// PartitionRead says how far a read covered a partition: Epoch is the
// lease it was read under, and acknowledging Next once the partition's
// events of the read are handled moves its checkpoint past everything
// read (also past stretches without events).
type PartitionRead struct {
	Partition int    `json:"partition"`
	Epoch     int64  `json:"epoch"`
	Next      string `json:"next"`
}

// GroupPage is one read of a member's partitions, in feed order (so each
// stream's events are in version order).
type GroupPage struct {
	Events       []GroupEvent    `json:"events"`
	Partitions   []PartitionRead `json:"partitions"`
	CompleteUpTo time.Time       `json:"complete_up_to"`
}

// ReadGroup reads the events of member's partitions after their
// checkpoints. Nothing moves until they are acknowledged (AckGroup).
func (c *Client) ReadGroup(ctx context.Context, group, member string, opts GroupReadOptions) (*GroupPage, error) {
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if len(opts.Partitions) > 0 {
		ps := make([]string, len(opts.Partitions))
		for i, p := range opts.Partitions {
			ps[i] = strconv.Itoa(p)
		}
		q.Set("partitions", strings.Join(ps, ","))
	}
	var page GroupPage
	r := &request{method: http.MethodGet, path: groupPath(group, "members", member, "events"), query: q, secret: c.secret(group, member)}
	if err := c.call(ctx, r, &page); err != nil {
		return nil, fmt.Errorf("eventlog: read group %s as %s: %w", group, member, err)
	}
	return &page, nil
}

// Ack acknowledges a partition's events up to Position (a GroupEvent's
// Position, or a PartitionRead's Next), read under lease Epoch. The
// checkpoint never moves back. Release also gives the partition up (""
// Position: the checkpoint stays).
type Ack struct {
	Partition int    `json:"partition"`
	Epoch     int64  `json:"epoch"`
	Position  string `json:"position,omitempty"`
	Release   bool   `json:"release,omitempty"`
}

// AckResult is a partition's state after an acknowledgement.
type AckResult struct {
	Partition  int    `json:"partition"`
	Epoch      int64  `json:"epoch"`
	Checkpoint string `json:"checkpoint"`
	Released   bool   `json:"released"`
}

// AckGroup applies acknowledgements (at most one per partition), each on
// its own: a partition no longer held under its epoch is refused with
// ErrLeaseLost (the *Problem's Partitions names them) and the others are
// applied. Acknowledging again is harmless, so it is retried like a read;
// a release repeated after it applied is answered Released only when its
// Ack carries a Position (proof the member held the partition under that
// epoch), else ErrLeaseLost: either way the partition is given up.
func (c *Client) AckGroup(ctx context.Context, group, member string, acks ...Ack) ([]AckResult, error) {
	body, err := json.Marshal(acks)
	if err != nil {
		return nil, err
	}
	var out struct {
		Acks []AckResult `json:"acks"`
	}
	r := &request{method: http.MethodPost, path: groupPath(group, "members", member, "ack"), body: body, contentType: mediaJSON, write: true,
		secret: c.secret(group, member)}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, fmt.Errorf("eventlog: ack group %s as %s: %w", group, member, err)
	}
	return out.Acks, nil
}

// LeaveGroup releases member's partitions at once (acknowledge first:
// leaving moves no checkpoint) and removes it from group.
func (c *Client) LeaveGroup(ctx context.Context, group, member string) error {
	r := &request{method: http.MethodDelete, path: groupPath(group, "members", member), write: true, secret: c.secret(group, member)}
	if err := c.call(ctx, r, nil); err != nil {
		return fmt.Errorf("eventlog: leave group %s as %s: %w", group, member, err)
	}
	c.secrets.Delete(memberKey{group, member})
	return nil
}

// EvictMember removes member from group without its secret, as an
// operator does with a worker that hangs or is gone: its partitions are
// released at once. The key needs the admin scope besides the group's.
// Evicting a member that is not there is not an error.
func (c *Client) EvictMember(ctx context.Context, group, member string) error {
	r := &request{method: http.MethodDelete, path: groupPath(group, "members", member), query: url.Values{"evict": {"true"}}, write: true}
	if err := c.call(ctx, r, nil); err != nil {
		return fmt.Errorf("eventlog: evict %s from group %s: %w", member, group, err)
	}
	c.secrets.Delete(memberKey{group, member})
	return nil
}

// DeleteGroup removes group with its members, leases and checkpoints
// (servers on the shard-log write path; the key needs the group scope).
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	r := &request{method: http.MethodDelete, path: groupPath(group), write: true}
	if err := c.call(ctx, r, nil); err != nil {
		return fmt.Errorf("eventlog: delete group %s: %w", group, err)
	}
	return nil
}

// headerMemberSecret carries a member's secret.
const headerMemberSecret = "Eventlog-Member-Secret"

type memberKey struct{ group, member string }

// secret returns the secret this Client's joins were answered for member
// of group, or "".
func (c *Client) secret(group, member string) string {
	if v, ok := c.secrets.Load(memberKey{group, member}); ok {
		return v.(string)
	}
	return ""
}

// GroupInfo describes a group.
type GroupInfo struct {
	Group     string    `json:"group"`
	Feed      string    `json:"feed"`
	CreatedAt time.Time `json:"created_at"`
	// Watermark is the feed watermark the lag was counted up to.
	Watermark time.Time `json:"watermark"`
	// Lag is the number of events after the checkpoints, summed over the
	// partitions. The server stops counting at a cap (100,000 by
	// default); LagCapped then says the lag is at least Lag.
	Lag        int64                `json:"lag"`
	LagCapped  bool                 `json:"lag_capped"`
	Members    []GroupMember        `json:"members"`
	Partitions []GroupPartitionInfo `json:"partitions"`
}

// GroupMember is a live member.
type GroupMember struct {
	Member    string    `json:"member"`
	ExpiresAt time.Time `json:"expires_at"`
}

// GroupPartitionInfo describes a partition of a group.
type GroupPartitionInfo struct {
	Partition int `json:"partition"`
	// Owner is the member holding the lease ("" when free).
	Owner string `json:"owner"`
	Epoch int64  `json:"epoch"`
	// LeaseUntil is zero when the partition is free, and left out of its
	// JSON then, as the server leaves it out.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	Checkpoint string    `json:"checkpoint"`
	Lag        int64     `json:"lag"`
	LagCapped  bool      `json:"lag_capped"`
}

// GroupInfo returns group's members, partitions and lag, or
// ErrGroupNotFound.
func (c *Client) GroupInfo(ctx context.Context, group string) (*GroupInfo, error) {
	var info GroupInfo
	if err := c.call(ctx, &request{method: http.MethodGet, path: groupPath(group)}, &info); err != nil {
		return nil, fmt.Errorf("eventlog: group %s: %w", group, err)
	}
	return &info, nil
}

// GroupSummary is a group in a listing.
type GroupSummary struct {
	Group     string    `json:"group"`
	Feed      string    `json:"feed"`
	CreatedAt time.Time `json:"created_at"`
	// Members is the number of live members.
	Members int `json:"members"`
}

// ListGroupsOptions selects a page of groups.
type ListGroupsOptions struct {
	After string // start after this group (a page's Next)
	Limit int    // groups per page; 0: the server's default (100), at most 1000
}

// GroupList is a page of groups, in name order. Next is where the next
// page starts (pass it as After), "" at the end.
type GroupList struct {
	Groups []GroupSummary
	Next   string
}

// ListGroups returns a page of the consumer groups the token may
// describe (its group scopes match the name and it may read the group's
// feed; an admin token sees all), by name, with their feed and live
// member count. Lag is in GroupInfo.
func (c *Client) ListGroups(ctx context.Context, opts ListGroupsOptions) (*GroupList, error) {
	q := url.Values{}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var body struct {
		Groups []GroupSummary `json:"groups"`
		Next   *string        `json:"next"`
	}
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/groups", query: q}, &body); err != nil {
		return nil, fmt.Errorf("eventlog: list groups: %w", err)
	}
	out := &GroupList{Groups: body.Groups}
	if body.Next != nil {
		out.Next = *body.Next
	}
	return out, nil
}
