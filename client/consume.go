package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ConsumeOptions say how Consume follows a group.
type ConsumeOptions struct {
	Feed   string // "all", "category/<c>", "type/<t>" (client.AllFeed, CategoryFeed, TypeFeed)
	Member string // stable member id; "" = generated (and replaced when the answer to its first join, with its secret, is lost)
	Batch  int    // events per read; 0 = default
	// Secret is Member's secret as saved by an earlier process (OnSecret,
	// or a JoinGroup's Membership.Secret), to resume as that member after
	// a crash: at once, its partitions at the same epochs. Without it, a
	// restarted member id is refused (ErrInvalidMemberSecret, which ends
	// Consume) until the dead process's member expires, a lease TTL and
	// a minute after its last heartbeat. A member that left or expired is
	// created anew with a new secret (OnSecret). Needs Member.
	Secret string
	// OnSecret, if set, is called (from Consume's goroutines, before it
	// goes on) with the member id and its secret whenever a join answers
	// a new one: the join that creates the member, or creates it anew.
	// Save it to pass as Secret after a restart.
	OnSecret func(member, secret string)
}

const (
	// defaultBatch is ConsumeOptions.Batch's default.
	defaultBatch = 100
	// idleAckEvery is how often Consume moves the checkpoint of a
	// partition without events past the stretch read, so reads and lag
	// counts do not start from an old position.
	idleAckEvery = 30 * time.Second
	// pollMin and pollMax bound the wait between empty reads; pollMax
	// keeps an idle member's delay at a quarter second, for a read that
	// costs one statics read per held shard when nothing is new.
	pollMin, pollMax = 50 * time.Millisecond, 250 * time.Millisecond
	// leaveTimeout bounds the acknowledgements and the leave sent after
	// ctx ended.
	leaveTimeout = 10 * time.Second
)

// Consume joins group as a member and calls handle for each event of the member's
// share of the feed, in order per stream, acknowledging after handle returns nil
// (at-least-once: an event may be handled again after a crash or lease loss).
// A handler error is retried with back-off, never skipped. It renews its leases,
// follows rebalancing, leaves the group when ctx ends and returns ctx's error.
//
// handle is called from one goroutine, one event at a time. Events are
// acknowledged per read (of up to Batch events), so a crash redelivers
// at most the events handled since the last read began. A partition is
// handled only while its lease lasts by this process's clock (a TTL after
// the heartbeat that renewed it was sent): a handle call that outlasts the
// lease TTL (10s by default) may overlap with the next owner's. Errors
// the server will not accept however often they are retried (an invalid
// name, a group that follows another feed) end Consume at once; outages
// are waited out.
func (c *Client) Consume(ctx context.Context, group string, opts ConsumeOptions, handle func(ctx context.Context, ev FeedEvent) error) error {
	if handle == nil {
		return errors.New("eventlog: consume: handle is nil")
	}
	if opts.Feed == "" {
		return errors.New("eventlog: consume: ConsumeOptions.Feed is required")
	}
	if opts.Secret != "" && opts.Member == "" {
		return errors.New("eventlog: consume: ConsumeOptions.Secret needs the Member it is the secret of")
	}
	cs := &consumer{c: c, group: group, feed: opts.Feed, member: opts.Member, secret: opts.Secret, onSecret: opts.OnSecret,
		batch: opts.Batch, kick: make(chan struct{}, 1), news: make(chan struct{}, 1), lastAck: map[int]time.Time{}}
	if cs.member == "" {
		cs.member, cs.generated = uuid.NewString(), true
	}
	if cs.batch <= 0 {
		cs.batch = defaultBatch
	}
	err := cs.joinFirst(ctx)
	if err == nil {
		hbCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.heartbeats(hbCtx)
		}()
		err = cs.run(ctx, handle)
		stop()
		wg.Wait()
	}
	// Leave even when ctx is done: the partitions move at once instead of
	// after the lease. A failure only delays that.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	_ = c.LeaveGroup(lctx, group, cs.memberID())
	return err
}

// consumer is the state of one Consume call.
type consumer struct {
	c           *Client
	group, feed string
	// member is the member id (under mu once Consume runs); generated
	// when Consume made it up, and so may replace it (renewMember).
	member    string
	generated bool
	// secret is the saved secret the first join presents (the Client
	// remembers it, or the one answered, for the later requests);
	// onSecret is ConsumeOptions.OnSecret.
	secret     string
	onSecret   func(member, secret string)
	batch      int
	kick, news chan struct{} // heartbeat now; the leases changed
	lastAck    map[int]time.Time
	mu         sync.Mutex
	ttl        time.Duration
	held       map[int]heldLease
	revoked    map[int]int64 // partition → epoch, to release
	fatal      error
}

// heldLease is a lease as this process judges it: usable until deadline,
// by its monotonic clock.
type heldLease struct {
	epoch    int64
	deadline time.Time
}

// joinFirst joins until it succeeds, ctx ends, or the server refuses for
// good.
func (cs *consumer) joinFirst(ctx context.Context) error {
	for n := 1; ; n++ {
		sent := time.Now()
		m, err := cs.c.JoinGroup(ctx, cs.group, JoinOptions{Feed: cs.feed, Member: cs.memberID(), Secret: cs.secret})
		if err == nil {
			cs.joined(m, sent)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cs.renewMember(err) {
			continue
		}
		if !retryable(err) {
			return fmt.Errorf("eventlog: consume %s: %w", cs.group, err)
		}
		if sleep(ctx, cs.c.retry.backoff(n)) != nil {
			return ctx.Err()
		}
	}
}

// memberID is the member id Consume joins as.
func (cs *consumer) memberID() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.member
}

// renewMember replaces a member id Consume generated with a new one when
// err says a join lacked the member's secret: the join that created the
// member (or created it anew after it expired) was applied but its answer,
// the only copy of the secret, was lost, and the client's retry of it was
// refused. The orphan expires with its lease; nothing it held was
// acknowledged by it after that join, so nothing is skipped. A member id
// given by the caller is kept (another process may be that member): the
// error ends Consume.
func (cs *consumer) renewMember(err error) bool {
	if !errors.Is(err, ErrInvalidMemberSecret) {
		return false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.generated {
		return false
	}
	cs.member = uuid.NewString()
	cs.held, cs.revoked = nil, nil
	return true
}

// heartbeats renews the leases every third of the TTL, or at once when
// kicked, until ctx ends.
func (cs *consumer) heartbeats(ctx context.Context) {
	for {
		cs.mu.Lock()
		every := cs.ttl / 3
		cs.mu.Unlock()
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-cs.kick:
			t.Stop()
		case <-t.C:
		}
		sent := time.Now()
		m, err := cs.c.JoinGroup(ctx, cs.group, JoinOptions{Feed: cs.feed, Member: cs.memberID()})
		switch {
		case err == nil:
			cs.joined(m, sent)
		case ctx.Err() != nil:
			return
		case cs.renewMember(err):
			cs.heartbeatNow() // join as the new member at once
		case !retryable(err):
			cs.mu.Lock()
			cs.fatal = fmt.Errorf("eventlog: consume %s: heartbeat: %w", cs.group, err)
			cs.mu.Unlock()
			cs.signal()
			return
		}
		// A failed heartbeat is tried again next time; meanwhile the
		// leases run out by the local clock and handling stops.
	}
}

// joined hands a new secret to OnSecret, then takes the membership
// answered to a join sent at sent.
func (cs *consumer) joined(m *Membership, sent time.Time) {
	if m.Secret != "" && cs.onSecret != nil {
		cs.onSecret(m.Member, m.Secret)
	}
	cs.update(m, sent)
}

// update takes a membership answered to a join sent at sent.
func (cs *consumer) update(m *Membership, sent time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.ttl = m.LeaseTTL
	if cs.ttl <= 0 {
		cs.ttl = 10 * time.Second
	}
	held := make(map[int]heldLease, len(m.Partitions))
	for _, l := range m.Partitions {
		held[l.Partition] = heldLease{epoch: l.Epoch, deadline: sent.Add(cs.ttl)}
	}
	revoked := make(map[int]int64, len(m.Revoked))
	for _, l := range m.Revoked {
		revoked[l.Partition] = l.Epoch
	}
	changed := len(held) != len(cs.held) || len(revoked) != len(cs.revoked)
	for p, l := range held {
		if cs.held[p].epoch != l.epoch {
			changed = true
		}
	}
	cs.held, cs.revoked = held, revoked
	if changed {
		cs.signalLocked()
	}
}

func (cs *consumer) signal() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.signalLocked()
}

func (cs *consumer) signalLocked() {
	select {
	case cs.news <- struct{}{}:
	default:
	}
}

func (cs *consumer) heartbeatNow() {
	select {
	case cs.kick <- struct{}{}:
	default:
	}
}

// usable lists the partitions whose lease is still good.
func (cs *consumer) usable() []int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := time.Now()
	var out []int
	for p, l := range cs.held {
		if now.Before(l.deadline) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// canHandle reports whether partition p is still held at epoch, with time
// left on its lease.
func (cs *consumer) canHandle(p int, epoch int64) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	l, ok := cs.held[p]
	return ok && l.epoch == epoch && time.Now().Before(l.deadline)
}

// drop forgets partitions the server says are not ours.
func (cs *consumer) drop(ps []int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, p := range ps {
		delete(cs.held, p)
	}
}

// run reads, handles and acknowledges until ctx ends or a heartbeat fails
// for good.
func (cs *consumer) run(ctx context.Context, handle func(context.Context, FeedEvent) error) error {
	wait, failed := pollMin, 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cs.mu.Lock()
		fatal := cs.fatal
		cs.mu.Unlock()
		if fatal != nil {
			return fatal
		}
		cs.release(ctx)
		parts := cs.usable()
		if len(parts) == 0 {
			cs.mu.Lock()
			every := cs.ttl / 3
			cs.mu.Unlock()
			cs.pause(ctx, every)
			continue
		}
		page, err := cs.c.ReadGroup(ctx, cs.group, cs.memberID(), GroupReadOptions{Partitions: parts, Limit: cs.batch})
		if err != nil {
			var p *Problem
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, ErrLeaseLost) && errors.As(err, &p):
				cs.drop(p.Partitions)
				cs.heartbeatNow()
			case !retryable(err):
				return fmt.Errorf("eventlog: consume %s: %w", cs.group, err)
			default:
				failed++
				cs.pause(ctx, cs.c.retry.backoff(failed))
			}
			continue
		}
		failed = 0
		stopped := cs.handle(ctx, page, handle)
		if stopped {
			return ctx.Err()
		}
		if len(page.Events) > 0 {
			wait = pollMin
			continue
		}
		cs.pause(ctx, wait)
		wait = min(2*wait, pollMax)
	}
}

// pause waits d, or until the leases change or ctx ends.
func (cs *consumer) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-cs.news:
	case <-t.C:
	}
}

// progress is what a batch did to one partition.
type progress struct {
	epoch   int64
	next    string
	last    string // position of the last event handled
	handled int
	skipped bool // lease lost mid-batch: the rest is the next owner's
}

// handle calls handle for the events of page whose partition is still
// held, then acknowledges what was handled. stopped reports that ctx
// ended; what was handled before is acknowledged all the same.
func (cs *consumer) handle(ctx context.Context, page *GroupPage, handle func(context.Context, FeedEvent) error) (stopped bool) {
	prog := make(map[int]*progress, len(page.Partitions))
	for _, pr := range page.Partitions {
		prog[pr.Partition] = &progress{epoch: pr.Epoch, next: pr.Next}
	}
events:
	for i := range page.Events {
		ev := &page.Events[i]
		pg := prog[ev.Partition]
		if pg == nil || pg.skipped {
			continue
		}
		for attempt := 1; ; attempt++ {
			if ctx.Err() != nil {
				stopped = true
				break events
			}
			if !cs.canHandle(ev.Partition, pg.epoch) {
				pg.skipped = true
				continue events
			}
			if err := handle(ctx, ev.FeedEvent); err == nil {
				pg.last, pg.handled = ev.Position, pg.handled+1
				break
			}
			// Never skipped: retried until it succeeds, the lease is
			// gone (the next owner handles it) or ctx ends.
			if sleep(ctx, cs.c.retry.backoff(attempt)) != nil {
				stopped = true
				break events
			}
		}
	}
	var acks []Ack
	now := time.Now()
	for _, pr := range page.Partitions {
		pg := prog[pr.Partition]
		switch {
		case !pg.skipped && !stopped && (pg.handled > 0 || now.Sub(cs.lastAck[pr.Partition]) > idleAckEvery):
			// Every event of the partition up to Next was handled.
			acks = append(acks, Ack{Partition: pr.Partition, Epoch: pg.epoch, Position: pg.next})
		case pg.handled > 0:
			acks = append(acks, Ack{Partition: pr.Partition, Epoch: pg.epoch, Position: pg.last})
		}
	}
	cs.ack(ctx, acks)
	return stopped
}

// ack sends acks, even after ctx ended. A refusal (the lease moved on) or
// a failure means those events come again: at least once.
func (cs *consumer) ack(ctx context.Context, acks []Ack) {
	if len(acks) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	_, err := cs.c.AckGroup(actx, cs.group, cs.memberID(), acks...)
	var p *Problem
	if errors.Is(err, ErrLeaseLost) && errors.As(err, &p) {
		cs.drop(p.Partitions)
		cs.heartbeatNow()
	}
	if err == nil || errors.Is(err, ErrLeaseLost) {
		now := time.Now()
		for _, a := range acks {
			if p == nil || !slices.Contains(p.Partitions, a.Partition) {
				cs.lastAck[a.Partition] = now
			}
		}
	}
}

// release gives up the revoked partitions (between batches, so none is
// being handled) so their new owner can start at once.
func (cs *consumer) release(ctx context.Context) {
	cs.mu.Lock()
	var acks []Ack
	for p, epoch := range cs.revoked {
		acks = append(acks, Ack{Partition: p, Epoch: epoch, Release: true})
	}
	cs.mu.Unlock()
	if len(acks) == 0 {
		return
	}
	_, err := cs.c.AckGroup(ctx, cs.group, cs.memberID(), acks...)
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return // tried again before the next read; the lease lapses anyway
	}
	cs.mu.Lock()
	for _, a := range acks {
		if cs.revoked[a.Partition] == a.Epoch {
			delete(cs.revoked, a.Partition)
		}
	}
	cs.mu.Unlock()
}
