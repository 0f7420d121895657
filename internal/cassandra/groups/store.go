package groups

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/dbclock"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

const (
	// schema/migrations/0006_shard_groups.cql: shard_groups.
	cqlGroupCreate = `INSERT INTO shard_groups (group_name, id, feed, created) VALUES (?, ?, ?, ?) IF NOT EXISTS`
	cqlGroupRead   = `SELECT id, feed, created FROM shard_groups WHERE group_name = ?`
	cqlGroupNames  = `SELECT group_name FROM shard_groups`
	cqlGroupList   = `SELECT group_name, feed, created FROM shard_groups`
	cqlGroupDelete = `DELETE FROM shard_groups WHERE group_name = ? IF EXISTS`
	// schema/migrations/0006_shard_groups.cql: shard_group_members.
	cqlMemberCreate = `INSERT INTO shard_group_members (group_name, member, expires, secret_hash) VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?`
	cqlMemberRenew  = `UPDATE shard_group_members USING TTL ? SET expires = ?, secret_hash = ? WHERE group_name = ? AND member = ? IF secret_hash = ?`
	cqlMemberDelete = `DELETE FROM shard_group_members WHERE group_name = ? AND member = ? IF EXISTS`
	cqlMembers      = `SELECT member, expires, secret_hash FROM shard_group_members WHERE group_name = ?`
	cqlMemberSecret = `SELECT secret_hash FROM shard_group_members WHERE group_name = ? AND member = ?`
	// schema/migrations/0006_shard_groups.cql: shard_group_leases.
	cqlLeases      = `SELECT shard, owner, epoch, lease_until, cp_seq, cp_index FROM shard_group_leases WHERE group_name = ?`
	cqlLease       = `SELECT owner, epoch, lease_until, cp_seq, cp_index FROM shard_group_leases WHERE group_name = ? AND shard = ?`
	cqlClaimNew    = `INSERT INTO shard_group_leases (group_name, shard, owner, epoch, lease_until, cp_seq, cp_index) VALUES (?, ?, ?, ?, ?, 1, 0) IF NOT EXISTS`
	cqlClaim       = `UPDATE shard_group_leases SET owner = ?, epoch = ?, lease_until = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND lease_until = ?`
	cqlRenew       = `UPDATE shard_group_leases SET lease_until = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ?`
	cqlAck         = `UPDATE shard_group_leases SET cp_seq = ?, cp_index = ?, acked_at = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND cp_seq = ? AND cp_index = ?`
	cqlLeaseDelete = `DELETE FROM shard_group_leases WHERE group_name = ? AND shard = ? IF EXISTS`
	cqlRelease     = `UPDATE shard_group_leases SET cp_seq = ?, cp_index = ?, owner = '', lease_until = ?, acked_at = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND cp_seq = ? AND cp_index = ?`
	// cqlUnclaim is cqlRelease of a claim as its join made it: also
	// conditional on its lease end, which a renewal since has moved
	// (checkClaims).
	cqlUnclaim = `UPDATE shard_group_leases SET cp_seq = ?, cp_index = ?, owner = '', lease_until = ?, acked_at = ? WHERE group_name = ? AND shard = ? IF owner = ? AND epoch = ? AND cp_seq = ? AND cp_index = ? AND lease_until = ?`
)

// zeroTime is lease_until of a released shard: long past.
var zeroTime = time.UnixMilli(0).UTC()

// memberRowGrace keeps a member row past its expiry (TTL seconds), so a
// member is never dropped by the TTL while its expires is still ahead.
const memberRowGrace = 60 * time.Second

// maxAckTries bounds the rounds of one acknowledgement: each re-reads the
// row (at SERIAL after an unknown outcome) and decides again.
const maxAckTries = 4

// Options configure a Store. Zero durations and counts take the defaults
// noted.
type Options struct {
	Session *gocql.Session    // at a quorum consistency
	Serial  gocql.Consistency // of conditional writes and settling reads
	Feeds   *feeds.Reader     // the keyspace's feed reader: its shards are the partitions
	Secret  []byte            // keyspace_config.token_secret
	// LeaseTTL is how long a join holds a member's shards. Default 10s.
	LeaseTTL time.Duration
	// LeaseGrace is how long after a lease's end another member may take
	// the shard (clock skew between instances). Default 1s.
	LeaseGrace time.Duration
	// LagCap bounds the events DescribeGroup counts over all shards.
	// Default 100,000.
	LagCap int
	// MaxGroups caps the groups of the keyspace (checked when a join
	// creates one; concurrent creations may pass it by a few). Default
	// 1,000.
	MaxGroups int
	// MaxMembers caps the live members of a group (checked when a join
	// creates a member). Members beyond the shard count stay idle.
	// Default 256.
	MaxMembers int
	// Now is this instance's clock; default time.Now. The store reads
	// Cassandra's through it (dbclock): only the offset between the two
	// counts.
	Now func() time.Time
	// Registerer, if set, gets the eventlog_group_lag_events gauge, set
	// by each DescribeGroup.
	Registerer prometheus.Registerer
	// Fault, if set, is called before a join's conditional write that
	// creates a member ("create member") and before every conditional
	// write on a group's rows (the op names of Store.cas: "delete group
	// member", "group release", …); an error it returns is taken as the
	// driver's answer and the write is not sent: tests make a request
	// lost on its way to Cassandra.
	Fault func(op string) error
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.LeaseGrace == 0 {
		o.LeaseGrace = time.Second
	}
	if o.LagCap == 0 {
		o.LagCap = 100_000
	}
	if o.MaxGroups == 0 {
		o.MaxGroups = 1000
	}
	if o.MaxMembers == 0 {
		o.MaxMembers = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	switch {
	case o.Session == nil || o.Feeds == nil:
		return errors.New("groups: a session and a feed reader are required")
	case o.LeaseTTL < 100*time.Millisecond || o.LeaseTTL > time.Hour:
		return fmt.Errorf("groups: lease TTL %v out of range 100ms..1h", o.LeaseTTL)
	case o.LeaseGrace < 0 || o.LagCap < 1 || o.MaxGroups < 1 || o.MaxMembers < 1:
		return fmt.Errorf("groups: negative lease grace %v, or lag cap %d, max groups %d or max members %d below 1",
			o.LeaseGrace, o.LagCap, o.MaxGroups, o.MaxMembers)
	}
	return nil
}

// Store keeps the consumer groups of one keyspace. Safe for concurrent
// use; every instance of a keyspace may serve every group.
type Store struct {
	o      Options
	tokens *Tokens
	shards int
	clock  *dbclock.Clock

	mu    sync.Mutex
	known map[string]groupRow // cached for groupCacheFor
	seen  map[leaseKey]seenLease

	lag *prometheus.GaugeVec
}

var _ log.GroupStore = (*Store)(nil)

// New returns the group store of the keyspace o.Feeds reads.
func New(o Options) (*Store, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t, err := NewTokens(o.Secret)
	if err != nil {
		return nil, err
	}
	s := &Store{o: o, tokens: t, shards: o.Feeds.Shards(), known: make(map[string]groupRow), seen: make(map[leaseKey]seenLease),
		clock: &dbclock.Clock{Session: o.Session, Local: o.Now},
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlog_group_lag_events",
			Help: "Events of each consumer group's feed after its checkpoints, counted up to the lag cap, as of the group's last description.",
		}, []string{"group"})}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.lag); err != nil {
			return nil, fmt.Errorf("groups: register metrics: %w", err)
		}
	}
	return s, nil
}

// Tokens is the store's position codec (tests forge with it).
func (s *Store) Tokens() *Tokens { return s.tokens }

// groupCacheFor is how long an instance trusts a cached group row: a
// row never changes, but another instance may delete the group.
const groupCacheFor = 5 * time.Second

type groupRow struct {
	id      gocql.UUID // this incarnation of the name
	feed    log.Feed
	created time.Time
	read    time.Time // when cached
}

// firstEpoch is the epoch of a lease row's first claim: random in
// [2^32, 2^52). A row is created only when missing: after its group was
// deleted, it is the row of a new incarnation, and an acknowledgement
// that read the old group's row just before the delete (its tokens pass)
// would otherwise find the owner and epoch it names (had both rows
// started at 1) and move the new checkpoint. Claims add one each, so two
// rows' epochs meet only if one starts within the claims the other made,
// about one chance in 2^52 per claim, whatever the instances' clocks say
// (a start taken from the clock collides when they differ). Epochs stay
// below 2^53, exact as JSON numbers in JavaScript (the console).
func firstEpoch() int64 {
	return 1<<32 + rand.Int64N(1<<52-1<<32)
}

// leaseRow is one row of shard_group_leases; a missing row reads as a
// free shard at epoch 0 with its checkpoint at the log's start.
type leaseRow struct {
	exists bool
	owner  string
	epoch  int64
	until  time.Time
	cp     feeds.ShardPos
}

// now is the time the store writes into rows and judges members' expiry
// by, at Cassandra's precision: Cassandra's clock (dbclock), so that a
// member that heartbeats through an instance hours behind or ahead is
// live, not expired or immortal, to every other instance.
func (s *Store) now(ctx context.Context) time.Time {
	return s.clock.Now(ctx).UTC().Truncate(time.Millisecond)
}

// token returns the token of position pos of shard under the lease at
// epoch, for member of group (row g).
func (s *Store) token(g groupRow, group, member string, shard int, epoch int64, pos feeds.ShardPos) string {
	return s.tokens.Encode(Position{Group: group, GroupID: g.id, Member: member, Shard: shard, Epoch: epoch, Pos: pos})
}

// group returns a group's row, or log.ErrGroupNotFound; serial settles a
// creation in flight.
func (s *Store) group(ctx context.Context, group string, serial bool) (groupRow, error) {
	s.mu.Lock()
	row, ok := s.known[group]
	s.mu.Unlock()
	if ok && !serial && time.Since(row.read) < groupCacheFor {
		return row, nil
	}
	return s.readGroup(ctx, group, serial)
}

// readGroup reads a group's row, past the cache (which it refreshes);
// serial settles a creation in flight.
func (s *Store) readGroup(ctx context.Context, group string, serial bool) (groupRow, error) {
	row := groupRow{read: time.Now()}
	var feed string
	q := s.o.Session.Query(cqlGroupRead, group).WithContext(ctx).Idempotent(true)
	if serial {
		q = q.Consistency(s.o.Serial)
	}
	err := q.Scan(&row.id, &feed, &row.created)
	if errors.Is(err, gocql.ErrNotFound) {
		return groupRow{}, fmt.Errorf("group %s: %w", group, log.ErrGroupNotFound)
	}
	if err != nil {
		return groupRow{}, cql.ReadErr("read group", err)
	}
	if row.feed, err = log.ParseFeedPath(feed); err != nil {
		return groupRow{}, fmt.Errorf("group %s: stored feed %q: %w", group, feed, cql.ErrInternal)
	}
	row.created = row.created.UTC()
	s.mu.Lock()
	if len(s.known) >= 10_000 {
		clear(s.known)
	}
	s.known[group] = row
	s.mu.Unlock()
	return row, nil
}

// ensureGroup creates group with feed unless it exists, and checks that
// it follows feed.
func (s *Store) ensureGroup(ctx context.Context, group string, feed log.Feed) (groupRow, error) {
	row, err := s.group(ctx, group, false)
	if errors.Is(err, log.ErrGroupNotFound) {
		if err := s.checkGroupCap(ctx); err != nil {
			return groupRow{}, err
		}
		_, cerr := s.o.Session.Query(cqlGroupCreate, group, gocql.UUIDFromTime(time.Now()), feed.String(), s.now(ctx)).WithContext(ctx).MapScanCAS(map[string]any{})
		if cerr = cql.CASErr("create group", cerr); errors.Is(cerr, log.ErrUnavailable) {
			return groupRow{}, cerr
		}
		// Applied, lost to a concurrent creator, or unknown: a SERIAL read
		// settles which row is there.
		row, err = s.group(ctx, group, true)
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

// checkGroupCap refuses a new group once the keyspace has MaxGroups. The
// table is small (capped): reading its keys is cheap.
func (s *Store) checkGroupCap(ctx context.Context) error {
	iter := s.o.Session.Query(cqlGroupNames).WithContext(ctx).Idempotent(true).Iter()
	var (
		n    int
		name string
	)
	for iter.Scan(&name) {
		n++
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("count groups", err)
	}
	if n >= s.o.MaxGroups {
		return fmt.Errorf("the keyspace has %d groups, the most allowed: %w", n, log.ErrTooManyGroups)
	}
	return nil
}

// memberRow is one row of shard_group_members.
type memberRow struct {
	log.MemberInfo
	secretHash []byte
}

// members returns every member row of group, expired ones included
// (until their TTL removes them), sorted by member.
func (s *Store) members(ctx context.Context, group string) ([]memberRow, error) {
	iter := s.o.Session.Query(cqlMembers, group).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []memberRow
		r   memberRow
	)
	for iter.Scan(&r.Member, &r.Expires, &r.secretHash) {
		r.Expires = r.Expires.UTC()
		out = append(out, r)
		r = memberRow{}
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read group members", err)
	}
	return out, nil
}

// live returns the members of rows whose expiry is after now.
func live(rows []memberRow, now time.Time) []log.MemberInfo {
	var out []log.MemberInfo
	for _, r := range rows {
		if r.Expires.After(now) {
			out = append(out, r.MemberInfo)
		}
	}
	return out
}

// liveMembers returns the members whose expiry is after now, sorted.
func (s *Store) liveMembers(ctx context.Context, group string, now time.Time) ([]log.MemberInfo, error) {
	rows, err := s.members(ctx, group)
	if err != nil {
		return nil, err
	}
	return live(rows, now), nil
}

// leases reads every lease row of group, one per shard.
func (s *Store) leases(ctx context.Context, group string) ([]leaseRow, error) {
	rows := make([]leaseRow, s.shards)
	var (
		shard int
		r     leaseRow
	)
	iter := s.o.Session.Query(cqlLeases, group).WithContext(ctx).Idempotent(true).Iter()
	for iter.Scan(&shard, &r.owner, &r.epoch, &r.until, &r.cp.Seq, &r.cp.Index) {
		if shard >= 0 && shard < s.shards {
			r.exists, r.until = true, r.until.UTC()
			rows[shard] = r
		}
		r = leaseRow{}
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read group leases", err)
	}
	return rows, nil
}

// lease reads one lease row; serial settles any conditional write in
// flight on it first.
func (s *Store) lease(ctx context.Context, group string, shard int, serial bool) (leaseRow, error) {
	r := leaseRow{exists: true}
	q := s.o.Session.Query(cqlLease, group, shard).WithContext(ctx).Idempotent(true)
	if serial {
		q = q.Consistency(s.o.Serial)
	}
	err := q.Scan(&r.owner, &r.epoch, &r.until, &r.cp.Seq, &r.cp.Index)
	if errors.Is(err, gocql.ErrNotFound) {
		return leaseRow{}, nil
	}
	if err != nil {
		return leaseRow{}, cql.ReadErr("read group lease", err)
	}
	r.until = r.until.UTC()
	return r, nil
}

// cas runs a conditional write on a lease row. An error is
// log.ErrUnavailable (not applied) or log.ErrOutcomeUnknown (maybe).
func (s *Store) cas(ctx context.Context, op, stmt string, args ...any) (bool, error) {
	if s.o.Fault != nil {
		if err := s.o.Fault(op); err != nil {
			return false, cql.CASErr(op, err)
		}
	}
	applied, err := s.o.Session.Query(stmt, args...).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return false, cql.CASErr(op, err)
	}
	return applied, nil
}

// GroupFeed implements log.GroupStore.
func (s *Store) GroupFeed(ctx context.Context, group string) (log.Feed, error) {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return log.Feed{}, err
	}
	g, err := s.group(ctx, group, false)
	return g.feed, err
}

// DeleteGroup implements log.GroupDeleter: the group row goes first (a
// join after it creates a new incarnation, whose tokens are bound to its
// new id), then the members and leases. A join racing the delete on an
// instance that still caches the old row (groupCacheFor) may leave member
// or lease rows behind; the new incarnation then starts from those
// checkpoints. The group's lag gauge goes too.
//
// A delete that failed after the group row went (an unknown outcome or
// an outage on a member or lease row) is finished by the next one: with
// no group row, the member and lease rows left are deleted all the same,
// and only a name without any row is log.ErrGroupNotFound. Answering 404
// there, as before, left the rows for good: the next join's group went on
// from the old checkpoints, its members' ids taken.
//
// The group's rows (group, members, leases) are written only by
// conditional writes, whose timestamps are Paxos ballots (Cassandra's
// clock), so they are deleted by conditional writes too: a plain delete
// carries this instance's clock, and from an instance behind it removed
// nothing (the rows were newer) while one ahead left tombstones that hid
// the next incarnation's rows for as long.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return err
	}
	_, err = s.group(ctx, group, true)
	missing := errors.Is(err, log.ErrGroupNotFound)
	if err != nil && !missing {
		return err
	}
	if !missing {
		if _, err := s.cas(ctx, "delete group", cqlGroupDelete, group); err != nil {
			return err
		}
	}
	members, err := s.members(ctx, group)
	if err != nil {
		return err
	}
	rows, err := s.leases(ctx, group)
	if err != nil {
		return err
	}
	if missing && len(members) == 0 && !slices.ContainsFunc(rows, func(r leaseRow) bool { return r.exists }) {
		return fmt.Errorf("group %s: %w", group, log.ErrGroupNotFound)
	}
	// One Cassandra partition (the group's): one at a time.
	for _, m := range members {
		if _, err := s.cas(ctx, "delete group member", cqlMemberDelete, group, m.Member); err != nil {
			return err
		}
	}
	// One Cassandra partition (the group's): one at a time.
	for shard, r := range rows {
		if !r.exists {
			continue
		}
		if _, err := s.cas(ctx, "delete group lease", cqlLeaseDelete, group, shard); err != nil {
			return err
		}
	}
	s.mu.Lock()
	delete(s.known, group)
	s.mu.Unlock()
	// Gone from /metrics too (other instances drop theirs when a describe
	// finds the group gone).
	s.lag.DeleteLabelValues(group)
	return nil
}
