package shardstore_test

import (
	"context"

	"errors"
	"fmt"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/groups"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// groupKeyspace is newKeyspace with quick group leases.
func groupKeyspace(t *testing.T, shards int) cassandra.Options {
	t.Helper()
	o := newKeyspace(t, shards)
	o.GroupLeaseTTL, o.GroupLeaseGrace = time.Second, 100*time.Millisecond
	return o
}

// secrets are the member secrets a test's joins were answered, by
// group/member: heartbeats present them.
var secrets sync.Map

func mustJoin(t *testing.T, gs log.GroupStore, group string, feed log.Feed, member string) log.Membership {
	t.Helper()
	key := t.Name() + "/" + group + "/" + member
	sec, _ := secrets.Load(key)
	secret, _ := sec.(string)
	m, err := gs.JoinGroup(context.Background(), log.JoinRequest{Group: group, Feed: feed, Member: member, Secret: secret})
	if err != nil {
		t.Fatalf("join %s as %s: %v", group, member, err)
	}
	if m.Secret != "" {
		secrets.Store(key, m.Secret)
	}
	return m
}

// waitHolds joins until member holds n shards.
func waitHolds(t *testing.T, gs log.GroupStore, group string, feed log.Feed, member string, n int) log.Membership {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := mustJoin(t, gs, group, feed, member)
		if len(m.Partitions) == n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d shards, want %d", member, len(m.Partitions), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustRead(t *testing.T, gs log.GroupStore, group, member string) log.GroupPage {
	t.Helper()
	p, err := gs.ReadGroup(context.Background(), log.GroupRead{Group: group, Member: member, Limit: 1000})
	if err != nil {
		t.Fatalf("read %s as %s: %v", group, member, err)
	}
	return p
}

// acksOf acknowledges every partition of a read at its Next.
func acksOf(p log.GroupPage) []log.Ack {
	var acks []log.Ack
	for _, pr := range p.Partitions {
		acks = append(acks, log.Ack{Partition: pr.Partition, Epoch: pr.Epoch, Position: pr.Next})
	}
	return acks
}

func mustInvalidPosition(t *testing.T, what string, err error) {
	t.Helper()
	var ve *log.ValidationError
	if !errors.As(err, &ve) || ve.Code != log.CodeInvalidPosition {
		t.Fatalf("%s: %v, want invalid_position", what, err)
	}
}

// TestGroupFencing: a member whose lease was taken over (it stopped
// heartbeating; its lease lapsed) cannot acknowledge, whatever it read:
// the epoch condition refuses it, the checkpoint stays, and the new owner
// gets the unacknowledged events again and acknowledges them.
func TestGroupFencing(t *testing.T) {
	o := groupKeyspace(t, 4)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	for i := range 8 {
		if _, err := appendN(ctx, s, fmt.Sprintf("fence-%d", i), log.Any, 2); err != nil {
			t.Fatal(err)
		}
	}
	feed := log.CategoryFeed("fence")
	a := mustJoin(t, s, "g", feed, "a")
	if len(a.Partitions) != 4 || a.Members != 1 {
		t.Fatalf("a: %+v", a)
	}
	pa := mustRead(t, s, "g", "a")
	if len(pa.Events) != 16 {
		t.Fatalf("a read %d events, want 16", len(pa.Events))
	}
	// a goes quiet; b takes every shard once a's lease lapsed.
	b := waitHolds(t, s, "g", feed, "b", 4)
	for _, l := range b.Partitions {
		if l.Epoch != a.Partitions[l.Partition].Epoch+1 {
			t.Fatalf("b's epoch on %d: %d after a's %d", l.Partition, l.Epoch, a.Partitions[l.Partition].Epoch)
		}
	}
	_, err := s.AckGroup(ctx, "g", "a", acksOf(pa))
	var lost *log.LeaseLostError
	if !errors.As(err, &lost) || len(lost.Partitions) != 4 {
		t.Fatalf("a's late ack: %v, want lease lost on 4 partitions", err)
	}
	if _, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Partitions: []int{0}}); !errors.As(err, &lost) {
		t.Fatalf("a's late read: %v", err)
	}
	info, err := s.DescribeGroup(ctx, "g")
	if err != nil || info.Lag != 16 || len(info.Partitions) != 4 {
		t.Fatalf("after the refused ack: lag %d (%v), %d partitions", info.Lag, err, len(info.Partitions))
	}
	// b reads the same events again: a never acknowledged them.
	pb := mustRead(t, s, "g", "b")
	if len(pb.Events) != 16 {
		t.Fatalf("b read %d events, want 16", len(pb.Events))
	}
	// a's tokens are a's: b cannot use them, even under its own epochs.
	steal := acksOf(pa)
	for i := range steal {
		steal[i].Epoch = b.Partitions[steal[i].Partition].Epoch
	}
	_, err = s.AckGroup(ctx, "g", "b", steal)
	mustInvalidPosition(t, "b acknowledging a's tokens", err)
	if _, err := s.AckGroup(ctx, "g", "b", acksOf(pb)); err != nil {
		t.Fatalf("b's ack: %v", err)
	}
	if p := mustRead(t, s, "g", "b"); len(p.Events) != 0 {
		t.Fatalf("b read %d events after acknowledging all", len(p.Events))
	}
	if info, err := s.DescribeGroup(ctx, "g"); err != nil || info.Lag != 0 {
		t.Fatalf("lag %d (%v) after b's ack", info.Lag, err)
	}
}

// TestGroupForgedPositions: acknowledgements whose position the member
// was not handed are refused with invalid_position and move nothing:
// garbage, altered tokens, feed tokens, another group's, another
// partition's, an earlier lease's, and a well-signed token past the log.
func TestGroupForgedPositions(t *testing.T) {
	o := groupKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	for i := range 6 {
		if _, err := appendN(ctx, s, fmt.Sprintf("forge-%d", i), log.Any, 3); err != nil {
			t.Fatal(err)
		}
	}
	feed := log.AllFeed
	m := mustJoin(t, s, "g", feed, "a")
	mustJoin(t, s, "other", feed, "a")
	p := mustRead(t, s, "g", "a")
	other := mustRead(t, s, "other", "a")
	if len(p.Partitions) != 2 || len(p.Events) != 18 {
		t.Fatalf("read: %d partitions, %d events", len(p.Partitions), len(p.Events))
	}
	fp, err := s.ReadFeed(ctx, log.FeedRead{Feed: feed, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	part, epoch := p.Partitions[0].Partition, p.Partitions[0].Epoch
	ack := func(pos string, part int, epoch int64) error {
		_, err := s.AckGroup(ctx, "g", "a", []log.Ack{{Partition: part, Epoch: epoch, Position: pos}})
		return err
	}
	// The secret, as a leak would give it: a token signed with it but past
	// the end of the log is still refused.
	var (
		secret []byte
		id     gocql.UUID
	)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`SELECT token_secret FROM keyspace_config WHERE id = 0`).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	if err := sess.Query(`SELECT id FROM shard_groups WHERE group_name = 'g'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	tokens, err := groups.NewTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	future := tokens.Encode(groups.Position{Group: "g", GroupID: id, Member: "a", Shard: part, Epoch: epoch, Pos: feeds.ShardPos{Seq: 1000}})
	// The same, one row past the log's end, where the next commit goes:
	// not handed out yet either.
	end, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Partitions: []int{part}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	endPos, err := tokens.Decode(end.Partitions[0].Next, "g", id, "a")
	if err != nil {
		t.Fatal(err)
	}
	endPos.Pos.Seq++
	justPast := tokens.Encode(endPos)
	var wrongPart string
	for _, e := range p.Events {
		if e.Partition != part {
			wrongPart = e.Position
			break
		}
	}
	for _, c := range []struct{ name, pos string }{
		{"Garbage", "garbage"},
		{"Altered", flip(p.Partitions[0].Next)},
		{"FeedToken", fp.Next},
		{"OtherGroup", other.Partitions[0].Next},
		{"OtherPartition", wrongPart},
		{"Future", future},
		{"JustPastTheEnd", justPast},
	} {
		t.Run(c.name, func(t *testing.T) { mustInvalidPosition(t, c.name, ack(c.pos, part, epoch)) })
	}
	// The token of the right shard under another epoch number.
	mustInvalidPosition(t, "other epoch", ack(p.Partitions[0].Next, part, epoch+1))
	if info, err := s.DescribeGroup(ctx, "g"); err != nil || info.Lag != 18 {
		t.Fatalf("lag %d (%v) after refused acks, want 18", info.Lag, err)
	}
	// A token of an earlier lease of the same member is refused after it
	// left and came back.
	if err := s.LeaveGroup(ctx, "g", "a"); err != nil {
		t.Fatal(err)
	}
	m2 := waitHolds(t, s, "g", feed, "a", 2)
	if m2.Partitions[0].Epoch <= m.Partitions[0].Epoch {
		t.Fatalf("epoch %d after rejoining, was %d", m2.Partitions[0].Epoch, m.Partitions[0].Epoch)
	}
	mustInvalidPosition(t, "earlier lease", ack(p.Partitions[0].Next, part, m2.Partitions[0].Epoch))
	var lost *log.LeaseLostError
	if err := ack(p.Partitions[0].Next, part, epoch); !errors.As(err, &lost) {
		t.Fatalf("earlier lease's ack under its epoch: %v, want lease lost", err)
	}
	// What the member was handed goes through, once.
	p2 := mustRead(t, s, "g", "a")
	if len(p2.Events) != 18 {
		t.Fatalf("read %d events after rejoining, want 18", len(p2.Events))
	}
	res, err := s.AckGroup(ctx, "g", "a", acksOf(p2))
	if err != nil || len(res) != 2 {
		t.Fatalf("ack: %v %+v", err, res)
	}
}

// TestGroupExactlyOnce: members on two instances consume a category
// while writers append through both; a second member joins, a third
// joins on the other instance, the first leaves. Members acknowledge
// every read before their next heartbeat and release revoked shards, so
// every event is delivered exactly once.
func TestGroupExactlyOnce(t *testing.T) {
	o := groupKeyspace(t, 6)
	o.GroupLeaseTTL = 3 * time.Second // a busy node must not lapse a lease mid-read
	var peers sync.Map
	fwd := func(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
		p, ok := peers.Load(addr)
		if !ok {
			return log.AppendResult{}, log.ErrUnavailable
		}
		return p.(*shardstore.Store).AppendLocal(ctx, req)
	}
	flush := func(ctx context.Context, addr string, stream log.StreamID) error {
		p, ok := peers.Load(addr)
		if !ok {
			return log.ErrUnavailable
		}
		return p.(*shardstore.Store).FlushLocal(ctx, stream)
	}
	s1 := open(t, shardstore.Options{Cassandra: o, Address: "one", Forward: fwd, FlushRemote: flush})
	peers.Store("one", s1)
	defer s1.Close()
	s2 := open(t, shardstore.Options{Cassandra: o, Address: "two", Forward: fwd, FlushRemote: flush})
	peers.Store("two", s2)
	defer s2.Close()
	stores := []*shardstore.Store{s1, s2}
	feed := log.CategoryFeed("once")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var (
		mu        sync.Mutex
		delivered = map[string]int{}
		appended  atomic.Int64
		writing   sync.WaitGroup
		stopW     = make(chan struct{})
		errs      = make(chan error, 16)
	)
	for w := range 4 {
		writing.Add(1)
		go func() {
			defer writing.Done()
			for i := 0; ; i++ {
				select {
				case <-stopW:
					return
				default:
				}
				st := stores[(w+i)%2]
				stream := fmt.Sprintf("once-%d", (w*7+i)%12)
				if _, err := appendN(ctx, st, stream, log.Any, 1+i%3); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				appended.Add(int64(1 + i%3))
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	// member consumes until stop is closed, then until a read comes back
	// empty; it leaves if leave is set.
	member := func(name string, st *shardstore.Store, stop <-chan struct{}, leave bool) {
		draining, secret := false, ""
		for {
			if !draining {
				select {
				case <-stop:
					draining = true
				default:
				}
			}
			m, err := st.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: name, Secret: secret})
			if err != nil {
				errs <- fmt.Errorf("%s join: %w", name, err)
				return
			}
			if m.Secret != "" {
				secret = m.Secret
			}
			if len(m.Revoked) > 0 {
				var rel []log.Ack
				for _, l := range m.Revoked {
					rel = append(rel, log.Ack{Partition: l.Partition, Epoch: l.Epoch, Release: true})
				}
				if _, err := st.AckGroup(ctx, "g", name, rel); err != nil {
					errs <- fmt.Errorf("%s release: %w", name, err)
					return
				}
			}
			p, err := st.ReadGroup(ctx, log.GroupRead{Group: "g", Member: name, Limit: 50})
			if err != nil {
				errs <- fmt.Errorf("%s read: %w", name, err)
				return
			}
			mu.Lock()
			for _, e := range p.Events {
				delivered[fmt.Sprintf("%s@%d", e.Stream, e.Version)]++
			}
			mu.Unlock()
			if len(p.Partitions) > 0 {
				if _, err := st.AckGroup(ctx, "g", name, acksOf(p)); err != nil {
					errs <- fmt.Errorf("%s ack: %w", name, err)
					return
				}
			}
			if draining && len(p.Events) == 0 && len(m.Revoked) == 0 {
				if leave {
					if err := st.LeaveGroup(ctx, "g", name); err != nil {
						errs <- fmt.Errorf("%s leave: %w", name, err)
					}
				}
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	var members sync.WaitGroup
	run := func(name string, st *shardstore.Store, stop <-chan struct{}, leave bool) {
		members.Add(1)
		go func() {
			defer members.Done()
			member(name, st, stop, leave)
		}()
	}
	stopA, stopRest := make(chan struct{}), make(chan struct{})
	run("a", s1, stopA, true)
	time.Sleep(1500 * time.Millisecond)
	run("b", s1, stopRest, false)
	time.Sleep(1500 * time.Millisecond)
	run("c", s2, stopRest, false)
	time.Sleep(1500 * time.Millisecond)
	close(stopA) // a drains what it holds and leaves; b and c take over
	time.Sleep(2 * time.Second)
	close(stopW)
	writing.Wait()
	// b and c drain only once they hold every shard between them (a's
	// released shards are taken at their next join).
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s2.DescribeGroup(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, p := range info.Partitions {
			if p.Owner == "b" || p.Owner == "c" {
				held++
			}
		}
		if held == 6 && info.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b and c hold %d of 6 shards, lag %d", held, info.Lag)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stopRest)
	members.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for k, n := range delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
		total += n
	}
	if int64(total) != appended.Load() {
		t.Fatalf("delivered %d events, appended %d", total, appended.Load())
	}
	t.Logf("%d events delivered once each over members a, b, c on two instances", total)
}

// TestGroupJoinCreateLost: a join whose creation of its member was lost
// on the way to Cassandra (a timeout: nothing written, as far as anyone
// can tell) is log.ErrOutcomeUnknown. The SERIAL read that settles it
// finds no member row, which was taken for a member another join had
// just created: log.ErrMemberSecret, 403 invalid_member_secret, telling
// the client its member id was taken, when nothing was. The same join
// sent again creates the member.
func TestGroupJoinCreateLost(t *testing.T) {
	o := groupKeyspace(t, 4)
	var lose atomic.Bool
	s := open(t, shardstore.Options{Cassandra: o, GroupFault: func(op string) error {
		if op == "create member" && lose.CompareAndSwap(true, false) {
			return gocql.ErrTimeoutNoResponse
		}
		return nil
	}})
	defer s.Close()
	ctx := context.Background()
	feed := log.CategoryFeed("lost")
	mustJoin(t, s, "g", feed, "a")

	lose.Store(true)
	_, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: feed, Member: "b"})
	if !errors.Is(err, log.ErrOutcomeUnknown) || errors.Is(err, log.ErrMemberSecret) {
		t.Fatalf("join whose member creation was lost: %v, want outcome unknown", err)
	}
	if lose.Load() {
		t.Fatal("the member's creation was not reached")
	}
	if m := mustJoin(t, s, "g", feed, "b"); m.Secret == "" {
		t.Fatalf("the join again: %+v, want the member created with a secret", m)
	}
}
