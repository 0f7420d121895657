package sequencer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// Sequencer commits appends for the shards this instance owns and
// forwards the others to their owners.
type Sequencer struct {
	cfg     Config
	metrics *metrics

	mu     sync.Mutex
	shards map[int]*shard // owned (taken over and running)
	owners map[int]owner  // the shards table as last read
	obs    observer
	// moved holds, by shard, a channel closed (and dropped, to be made
	// again by the next waiter) when a newer epoch than owners' is
	// recorded for it: the calls waiting on an owner watch it (ownerOf).
	moved map[int]chan struct{}
	// ownerRead is when a wait last read each shard's row (refreshOwner).
	ownerRead map[int]time.Time
	// refused is the schema version, by shard, of the newer binary whose
	// claim this one last declined to override (logged once).
	refused map[int]int
	// lastMembers is the membership last read, at membersAt (the
	// ownership loop's alone).
	lastMembers map[string]int
	membersAt   time.Time

	// handing holds the shards being handed over (under mu), each
	// drained and released in the background (dropped from shards when
	// its turn comes), left alone by claims until released.
	handing   map[int]*shard
	handovers sync.WaitGroup
	// background tracks the rest that Close awaits: stopped shards'
	// goroutines, head preloads, segment notes.
	background sync.WaitGroup
	// handoverSem bounds the handovers at once; endHandovers cuts the
	// ones in flight short when Close's deadline ends.
	handoverSem  chan struct{}
	handoverBase context.Context
	endHandovers context.CancelFunc

	// taking holds the shards being taken over (under mu), each claimed
	// and caught up in the background (startTake): the tick renews their
	// leases with its own and leaves their claims to them. takeBase ends
	// the catch-ups in flight when Close begins.
	taking   map[int]*takeState
	takes    sync.WaitGroup
	takeSem  chan struct{}
	takeBase context.Context
	endTakes context.CancelFunc
	slots    chan struct{} // commits in flight on this instance; nil: no bound
	blocks   *blocks       // nil: NoBlocks
	started  time.Time
	closing  chan struct{}
	loop     sync.WaitGroup
	// departing is set by Leave: no more heartbeats, and shards are
	// assigned without this instance while another can take them.
	departing atomic.Bool
}

// New checks cfg and returns a Sequencer that owns nothing yet: Start
// claims shards.
func New(cfg Config) (*Sequencer, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sequencer{
		cfg: cfg, metrics: newMetrics(cfg.Registerer), shards: map[int]*shard{}, owners: map[int]owner{},
		obs: observer{seen: map[int]observation{}}, closing: make(chan struct{}), started: time.Now(),
		refused: map[int]int{}, handing: map[int]*shard{}, handoverSem: make(chan struct{}, handoverConcurrency),
		taking: map[int]*takeState{}, takeSem: make(chan struct{}, takeConcurrency), moved: map[int]chan struct{}{}, ownerRead: map[int]time.Time{},
	}
	s.handoverBase, s.endHandovers = context.WithCancel(context.Background())
	s.takeBase, s.endTakes = context.WithCancel(context.Background())
	if cfg.CommitsInFlight > 0 {
		s.slots = make(chan struct{}, cfg.CommitsInFlight)
	}
	if !cfg.NoBlocks {
		s.blocks = newBlocks(cfg.Streams, cfg.Logger, s.metrics)
	}
	return s, nil
}

// commitSlot waits for one of the instance's commit slots; nil if lost
// closed first.
func (s *Sequencer) commitSlot(lost <-chan struct{}) func() {
	if s.slots == nil {
		return func() {}
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }
	case <-lost:
		return nil
	}
}

// Start claims the shards that are free and starts the ownership loop,
// which renews this instance's leases and claims shards whose owner
// stopped renewing.
func (s *Sequencer) Start(ctx context.Context) error {
	if err := s.tick(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	first := make([]*takeState, 0, len(s.taking))
	for _, ts := range s.taking {
		first = append(first, ts)
	}
	s.mu.Unlock()
	// The first tick's takeovers end before Start returns (an instance
	// alone owns every shard once it has started), or ctx does, with the
	// loop already ticking: it renews the shards taken meanwhile and the
	// heartbeat.
	defer func() {
		for _, ts := range first {
			select {
			case <-ts.done:
			case <-ctx.Done():
				return
			}
		}
	}()
	s.loop.Add(1)
	go func() {
		defer s.loop.Done()
		t := time.NewTicker(s.cfg.LeaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-s.closing:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
				if err := s.tick(ctx); err != nil {
					s.cfg.Logger.Warn("shard ownership", "err", err)
				}
				cancel()
			}
		}
	}()
	return nil
}

// tick records this instance as live, renews its shards, hands over
// those another live instance should own, and claims the ones it should
// own (or that were left without a live owner).
func (s *Sequencer) tick(ctx context.Context) error {
	if p := s.cfg.Paused; p != nil && p() {
		return nil
	}
	if !s.departing.Load() {
		if err := s.heartbeat(ctx); err != nil {
			s.cfg.Logger.Warn("heartbeat", "err", err)
		}
	}
	if s.departing.Load() {
		// Each tick while departing: Leave's delete may have failed, or a
		// heartbeat running beside it written the row back, and while the
		// row stays the others assign this instance shards it releases.
		s.leave(ctx)
	}
	members, err := s.members(ctx)
	want := assign(newest(s.membership(members, err, time.Now())), s.cfg.Shards)
	owners, err := s.readOwners(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	// A takeover running beside the tick may have registered its shard
	// since the rows were read (before its claim applied): the row read
	// is older than what it recorded, and must not replace it.
	for id, sh := range s.shards {
		if o := owners[id]; o.Epoch < sh.epoch {
			owners[id] = s.selfOwner(id, sh.epoch)
		}
	}
	s.setOwnersLocked(owners)
	mine := make(map[int]*shard, len(s.shards))
	for id, sh := range s.shards {
		mine[id] = sh
	}
	s.mu.Unlock()
	var leaving []*shard
	for id, sh := range mine {
		select {
		case <-sh.lost:
			s.drop(sh)
			s.background.Go(func() { <-sh.done })
			continue
		default:
		}
		sent := time.Now()
		ok, err := s.renew(ctx, id, sh.epoch)
		if ok {
			sh.renewed(sent)
		}
		if err != nil {
			s.cfg.Logger.Warn("renew shard lease", "shard", id, "err", err)
			continue // the epoch, not the lease, keeps commits safe
		}
		if !ok {
			sh.stop(fmt.Errorf("shard %d: lease taken over", id))
			s.drop(sh)
			s.background.Go(func() { <-sh.done })
			continue
		}
		if d := want[id]; d != s.cfg.Instance {
			s.cfg.Logger.Info("handing shard over", "shard", id, "to", d)
			leaving = append(leaving, sh)
		}
	}
	// After every renewal, in the background: a drain waits for a commit
	// in flight, however long it takes, and the next tick's renewals of
	// the shards kept must not wait for it.
	for _, sh := range leaving {
		s.handOver(sh, s.cfg.LeaseTTL)
	}
	s.renewTaking(ctx)
	now := time.Now() // monotonic: others' leases are judged by observation
	for id := 0; id < s.cfg.Shards; id++ {
		o, ok := owners[id]
		if !ok {
			o = owner{Shard: id}
		}
		// A row naming this instance for a shard it no longer holds (the
		// shard stopped: an unknown commit outcome, a failed takeover) is
		// judged as anyone's: claimed again, under a new epoch, once seen
		// unrenewed for a TTL. Skipping it left the shard without an owner
		// for as long as this instance lived.
		s.mu.Lock()
		busy := s.handing[id] != nil || s.taking[id] != nil || s.shards[id] != nil // taken since mine was read
		s.mu.Unlock()
		if mine[id] != nil || busy {
			s.obs.unchanged(o, now)
			continue
		}
		if s.obs.claimable(o, s.cfg.Instance, want[id], s.cfg.LeaseTTL, now) {
			s.startTake(o)
		}
	}
	return nil
}

// selfOwner is the shards row this instance writes when it holds shard
// at epoch.
func (s *Sequencer) selfOwner(shard int, epoch int64) owner {
	return owner{Shard: shard, Owner: s.cfg.Instance, Address: s.cfg.Address, Epoch: epoch, SchemaVersion: s.cfg.SchemaVersion, exists: true}
}

// takeState is a takeover in flight: its epoch once the claim applied
// (under the Sequencer's mu), and how to end it.
type takeState struct {
	epoch  int64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the takeover has ended
}

// takeConcurrency bounds the takeovers at once: each catches its shard up
// from the log (reads and fills), and an instance inheriting a dead one's
// hundred shards should neither wait for them one by one nor send every
// catch-up's writes together.
const takeConcurrency = 8

// startTake claims o's shard and takes it over in the background. A
// takeover inside the tick held it for as long as the catch-up ran (up to
// minutes, for a shard whose owner died with much unfilled): the tick
// renewed none of the instance's other leases meanwhile, so those shards
// looked abandoned to the other instances, and no other shard was claimed.
func (s *Sequencer) startTake(o owner) {
	ctx, cancel := context.WithCancel(s.takeBase)
	ts := &takeState{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.taking[o.Shard] != nil {
		s.mu.Unlock()
		cancel()
		return
	}
	s.taking[o.Shard] = ts
	s.mu.Unlock()
	s.takes.Go(func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.taking, o.Shard)
			s.mu.Unlock()
			close(ts.done)
		}()
		select {
		case s.takeSem <- struct{}{}:
			defer func() { <-s.takeSem }()
		case <-ctx.Done():
			return
		}
		// The bound runs from the turn, not from the queue.
		ctx, tcancel := context.WithTimeout(ctx, takeTimeout)
		defer tcancel()
		if err := s.take(ctx, o, ts); err != nil {
			s.cfg.Logger.Warn("claim shard", "shard", o.Shard, "err", err)
		}
	})
}

// takeTimeout bounds a takeover: its claim and catch-up.
const takeTimeout = 2 * time.Minute

// renewTaking renews the leases of the shards being taken over, as the
// tick does its own: a catch-up can outlast a lease, and a lease seen
// unrenewed for long enough is claimed by another instance, which would
// waste the catch-up. A renewal that does not apply means another
// instance claimed the shard: its takeover here ends.
func (s *Sequencer) renewTaking(ctx context.Context) {
	type lease struct {
		id, epoch int64
		ts        *takeState
	}
	var leases []lease
	s.mu.Lock()
	for id, ts := range s.taking {
		if ts.epoch > 0 && ts.ctx.Err() == nil { // an ended take's lease runs out
			leases = append(leases, lease{int64(id), ts.epoch, ts})
		}
	}
	s.mu.Unlock()
	for _, l := range leases {
		ok, err := s.renew(ctx, int(l.id), l.epoch)
		switch {
		case err != nil:
			s.cfg.Logger.Warn("renew lease of shard being taken", "shard", l.id, "err", err)
		case !ok:
			l.ts.cancel()
		}
	}
}

// membership returns the live instances and their schema versions that
// shards are assigned over, given a read of the instances table (read,
// or its error) at now: this instance always, and for 3 lease TTLs after
// the last read that succeeded, its members when a read fails.
func (s *Sequencer) membership(read map[string]int, err error, now time.Time) map[string]int {
	switch {
	case err == nil:
		s.lastMembers, s.membersAt = read, now
		read = maps.Clone(read)
	case now.Sub(s.membersAt) < 3*s.cfg.LeaseTTL:
		// A failed read must not make this instance alone in the world for
		// a tick: an older binary would stop handing its shards to a newer
		// one and claim the free ones back.
		read = maps.Clone(s.lastMembers)
	default:
		read = nil
	}
	if read == nil {
		read = map[string]int{}
	}
	delete(read, s.cfg.Instance)
	if !s.departing.Load() || !anyAtLeast(read, s.cfg.SchemaVersion) {
		// A departing instance keeps what no other may take (it is alone,
		// or the others run older binaries, which the fence keeps off its
		// shards), so that its requests in flight still commit.
		read[s.cfg.Instance] = s.cfg.SchemaVersion
	}
	return read
}

// anyAtLeast reports whether a member runs a binary of schema version v
// or newer.
func anyAtLeast(members map[string]int, v int) bool {
	for _, mv := range members {
		if mv >= v {
			return true
		}
	}
	return false
}

// Leave starts this instance's departure while it goes on serving the
// requests in flight (before Close): it stops heartbeating and removes
// its instances row, and from its next tick hands over, as a rebalance
// does, every shard another live instance may take; appends to them are
// forwarded to their new owners. Shards no other instance may take stay
// until Close. Stopping an instance used to keep every shard until the
// requests in flight had ended, while its listener, closed first,
// refused the appends the others forwarded to it.
//
// The row's delete runs in the background (and again at each tick), so a
// slow Cassandra does not hold the listener open: ctx is not used past the
// call.
func (s *Sequencer) Leave(ctx context.Context) {
	if s.departing.Swap(true) {
		return
	}
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LeaseTTL)
		defer cancel()
		s.leave(ctx)
	})
}

// handOver gives up sh in the background, within drainFor (0: until
// Close's deadline): new appends wait for the next owner, the queued ones
// are committed and filled, then the shard is released, so the instance
// that should own it claims it at its next tick, not a lease TTL later.
// Many shards move at once (a rolling upgrade), at most
// handoverConcurrency at a time.
func (s *Sequencer) handOver(sh *shard, drainFor time.Duration) {
	s.mu.Lock()
	if s.handing[sh.id] != nil {
		s.mu.Unlock()
		return
	}
	s.handing[sh.id] = sh
	s.mu.Unlock()
	s.handovers.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.handing, sh.id)
			s.mu.Unlock()
		}()
		// Until its turn the shard serves appends and ticks renew it.
		select {
		case s.handoverSem <- struct{}{}:
			defer func() { <-s.handoverSem }()
		case <-s.handoverBase.Done():
		}
		s.drop(sh)
		ctx, cancel := s.handoverBase, context.CancelFunc(func() {})
		if drainFor > 0 {
			ctx, cancel = context.WithTimeout(s.handoverBase, drainFor)
		}
		defer cancel()
		sh.drain(ctx)
		// A deadline of its own: a drain that ran out of time has used up
		// ctx, and an unreleased shard waits a lease TTL for its next
		// owner. (Past Close's deadline it is not tried.)
		rctx, rcancel := context.WithTimeout(s.handoverBase, releaseTimeout)
		defer rcancel()
		if err := s.release(rctx, sh.id, sh.epoch); err != nil {
			s.cfg.Logger.Warn("release shard", "shard", sh.id, "err", err)
		}
	})
}

// releaseTimeout bounds a handed-over shard's release (one conditional
// write), after its drain, whatever time the drain left.
const releaseTimeout = 2 * time.Second

// handoverConcurrency bounds the shards drained and released at once: a
// drain commits a shard's queue, and a thousand shards moving (a rolling
// upgrade) would otherwise send a thousand conditional writes together.
const handoverConcurrency = 32

// take claims shard o.Shard from its observed row and takes it over,
// within ctx (startTake's). A takeover ended before its shard serves
// (Close, or another instance's claim) releases the claim if it can, so
// that the shard's next owner need not wait out the lease.
func (s *Sequencer) take(ctx context.Context, o owner, ts *takeState) error {
	select {
	case <-s.closing:
		return errors.New("closing")
	default:
	}
	sent := time.Now()
	cctx, ccancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
	epoch, ok, err := s.claim(cctx, o)
	ccancel()
	if err != nil && ctx.Err() != nil {
		// Cut short by Close: the claim may have applied. (The release is
		// conditioned on the epoch it would have set.)
		s.releaseUnserved(o.Shard, o.Epoch+1)
	}
	if err != nil || !ok {
		return err
	}
	s.mu.Lock()
	ts.epoch = epoch
	s.mu.Unlock()
	sh := newShard(s, o.Shard, epoch)
	sh.renewed(sent)
	if err := sh.takeover(ctx, o.Segment); err != nil {
		if ctx.Err() != nil {
			s.releaseUnserved(o.Shard, epoch)
		} else {
			s.metrics.takeFailed.Inc()
		}
		// Not serving: let the lease run out (or another claim succeed).
		return fmt.Errorf("take over shard %d at epoch %d: %w", o.Shard, epoch, err)
	}
	// A catch-up can outlast the claim's lease: renew it before serving
	// (the flushes judge it), on a context of its own (the take's may
	// have run out meanwhile).
	sent = time.Now()
	rctx, rcancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
	ok, err = s.renew(rctx, o.Shard, epoch)
	rcancel()
	switch {
	case ok:
		sh.renewed(sent)
	case err == nil:
		return fmt.Errorf("take over shard %d at epoch %d: claimed by another instance during the catch-up", o.Shard, epoch)
	}
	// Registered even if Close began meanwhile: it waits for the takes
	// before it hands over the shards it holds.
	sh.start()
	s.mu.Lock()
	s.shards[o.Shard] = sh
	s.metrics.owned.Set(float64(len(s.shards)))
	s.mu.Unlock()
	s.setOwner(s.selfOwner(o.Shard, epoch))
	s.metrics.takeovers.Inc()
	s.cfg.Logger.Info("shard taken", "shard", o.Shard, "epoch", epoch, "seq", sh.committed.Load())
	return nil
}

// setOwner records one shard's row. The owners map is replaced, never
// changed, so a reader holding it needs no lock.
func (s *Sequencer) setOwner(o owner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := maps.Clone(s.owners)
	m[o.Shard] = o
	s.setOwnersLocked(m)
}

// setOwnersLocked records owners as the shards table, under mu, and wakes
// the calls waiting on a shard it names a newer epoch for (ownerOf).
//
// A row already recorded under a higher epoch than owners' is kept, and
// written into owners (the tick judges leases on that map): epochs in the
// shards table only grow, so the lower one was read before it changed, by
// a tick that began before readOwner (untilOwner) or a takeover recorded
// the newer row, or by a readOwner that began before a tick did. Replacing
// it sent forwards to the older owner until the next read. Keeping it
// makes no dead owner look alive nor a live one dead: the observer sees a
// row that was in the table when read, from the moment it is recorded, and
// a claim built on it is conditional on its epoch and lease. The next read
// naming its epoch or a higher one replaces it, and so does one that finds
// no row (a keyspace dropped and made again under a running instance, a
// row deleted by hand): kept, it would never be claimed.
func (s *Sequencer) setOwnersLocked(owners map[int]owner) {
	for id, prev := range s.owners {
		if o, ok := owners[id]; ok && o.exists && prev.Epoch > o.Epoch {
			owners[id] = prev
		}
	}
	for id, ch := range s.moved {
		if owners[id].Epoch > s.owners[id].Epoch {
			close(ch)
			delete(s.moved, id)
		}
	}
	s.owners = owners
}

// ownerOf returns shard id's owner as last recorded and a channel closed
// once a newer epoch is recorded for it: both read under mu, where
// setOwnersLocked closes it, so a rise after the read is never missed.
// A waiter selects on it beside its call's answer (flushRemote,
// forwardRemote, untilOwner) rather than poll the owners.
func (s *Sequencer) ownerOf(id int) (owner, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.moved[id]
	if ch == nil {
		ch = make(chan struct{})
		s.moved[id] = ch
	}
	return s.owners[id], ch
}

func (s *Sequencer) drop(sh *shard) {
	s.mu.Lock()
	if s.shards[sh.id] == sh {
		delete(s.shards, sh.id)
	}
	s.metrics.owned.Set(float64(len(s.shards)))
	s.mu.Unlock()
}

// Append commits req through its shard: here when this instance owns it,
// else forwarded to the owner. req must be validated.
func (s *Sequencer) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	return s.append(ctx, req, true)
}

// AppendLocal commits req only if this instance owns its shard (a
// forwarded request is never forwarded again).
func (s *Sequencer) AppendLocal(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	return s.append(ctx, req, false)
}

func (s *Sequencer) append(ctx context.Context, req log.AppendRequest, forward bool) (res log.AppendResult, err error) {
	id := partition.ShardOf(string(req.Stream), s.cfg.Shards)
	var (
		sent  time.Time // when req was first forwarded
		moved bool      // and given up on, its outcome unknown
		// An id the server made for this request (not the client's): no
		// earlier request can hold it, so a duplicate the re-sent append
		// finds is its own first attempt (asRetry marks it a client's).
		made = slices.ContainsFunc(req.Events, func(e log.ProposedEvent) bool { return !e.ClientID })
	)
	werr := s.untilOwner(ctx, id, "append to "+string(req.Stream), func(sh *shard, o owner) bool {
		switch {
		case sh != nil:
			p := newPending(ctx, req)
			if err = sh.submit(p, false); err == nil {
				res, err = p.wait(ctx)
				// Queued when the shard stopped (handed over, or lost), so
				// never sent: try its next owner, as a client would.
				return !errors.Is(err, errStopped)
			}
			return !errors.Is(err, errStopped)
		case !forward:
			// A forwarded append: the sender looks for the new owner.
			err = fmt.Errorf("shard %d: %w", id, log.ErrNotOwner)
			return true
		case s.cfg.Forward != nil && o.Owner != "" && o.Owner != s.cfg.Instance && o.Address != "":
			s.metrics.forwarded.Inc()
			if sent.IsZero() {
				sent = time.Now()
			}
			res, err = s.forwardRemote(ctx, id, o, req, sent)
			if errors.Is(err, errOwnerMoved) {
				// Sent again, to the new owner, as a retry: every id a
				// client's, also where this instance is the new owner
				// (a local commit checks only client ids).
				req, moved = asRetry(req), true
				return false
			}
			// Not the owner any more, or not reachable (its listener
			// closed as it hands its shards over): nothing was sent, and
			// the owner read next is asked.
			return !errors.Is(err, log.ErrNotOwner) && !errors.Is(err, log.ErrOwnerUnreachable)
		}
		return false
	})
	if werr == nil && err == nil {
		if moved && made {
			// The duplicate of this request's own first attempt, which the
			// paused owner committed: new to the client, which sent it
			// once. (With every id the client's, the first attempt cannot
			// be told from an earlier client retry: duplicate stands.)
			res.Duplicate = false
		}
		return res, nil
	}
	if werr != nil {
		err = werr
	}
	if moved && !definite(err) {
		// Not sent again, not taken, or refused for a reason that says
		// nothing of the first attempt (a key revoked meanwhile, the new
		// owner's refusal of this instance): it may have committed.
		return log.AppendResult{}, fmt.Errorf("%w: %v (forwarded to the shard's previous owner, which did not answer)", log.ErrOutcomeUnknown, err)
	}
	return log.AppendResult{}, err
}

// definite reports whether err, the answer to an append sent again as a
// retry, also answers the first attempt: a retry of a committed append is
// recognised as its duplicate, so a conflict with the stream, or input
// refused as such, means the first attempt did not commit either. Corrupt
// data (log.ErrDataCorrupt) is not definite: the retry was refused before
// its check could tell whether the first attempt is stored.
func definite(err error) bool {
	var (
		wrong *log.WrongExpectedVersionError
		bad   *log.ValidationError
	)
	return errors.As(err, &wrong) || errors.As(err, &bad) || errors.Is(err, log.ErrIdempotencyConflict)
}

// untilOwner calls try with the shard as this instance holds it (nil when
// it does not own it) and its owner as last read, until try says it is
// done: while a shard moves (handed over, or its owner died) there is no
// one to ask for a moment, so it waits for the new owner rather than
// failing: a handover takes a drain, a release and a takeover (a few
// conditional writes), a dead owner's shard a lease TTL or two more. The
// wait starts again when a newer owner appears: a try that waited on a
// paused owner until it was taken over (forwardRemote, flushRemote) has
// used up most of it by then. Between tries it waits 50 ms and reads the
// shard's row (a move this instance's tick has not seen yet), or less: it
// tries again at once when a newer owner than the one the try was given is
// recorded, before or during the wait (ownerOf), as when forwardRemote or
// flushRemote gave up on a paused owner, or this instance took the shard.
func (s *Sequencer) untilOwner(ctx context.Context, id int, what string, try func(sh *shard, o owner) (done bool)) error {
	wait := max(3*s.cfg.LeaseTTL, 10*time.Second)
	deadline := time.Now().Add(wait)
	var epoch int64
	for {
		s.mu.Lock()
		sh := s.shards[id]
		o := s.owners[id]
		s.mu.Unlock()
		if epoch == 0 {
			// The owner the first try asks: a newer one seen after it,
			// as one that took over a paused owner the try waited on,
			// starts the wait again.
			epoch = o.Epoch
		}
		if try(sh, o) {
			return nil
		}
		cur, moved := s.ownerOf(id)
		if cur.Epoch > epoch {
			deadline, epoch = time.Now().Add(wait), cur.Epoch
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w: shard %d has no live owner (retry)", what, log.ErrUnavailable, id)
		}
		if cur.Epoch > o.Epoch {
			continue // recorded during the try: ask it
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w: %v (nothing sent)", what, log.ErrUnavailable, ctx.Err())
		case <-moved:
			t.Stop()
			continue
		case <-t.C:
		}
		s.refreshOwner(ctx, id)
	}
}

// ownerReadEvery is how often the waits on a shard's owner (untilOwner)
// read its row, together: however many appends wait on a shard (its owner
// stopping, or dead), they share one read per period.
const ownerReadEvery = 50 * time.Millisecond

// refreshOwner reads shard id's row and records it, unless a wait read it
// less than ownerReadEvery ago (it is recorded, or about to be).
func (s *Sequencer) refreshOwner(ctx context.Context, id int) {
	s.mu.Lock()
	if time.Since(s.ownerRead[id]) < ownerReadEvery {
		s.mu.Unlock()
		return
	}
	s.ownerRead[id] = time.Now()
	s.mu.Unlock()
	if fresh, err := s.readOwner(ctx, id); err == nil {
		s.setOwner(fresh)
	}
}

// Flush returns once every event committed to stream so far is in its
// partitions: readers call it before they read. The owner of the stream's
// shard does it (this instance, or the owner through FlushRemote).
func (s *Sequencer) Flush(ctx context.Context, stream log.StreamID) error {
	return s.flush(ctx, stream, true)
}

// FlushLocal flushes stream only if this instance owns its shard (a
// forwarded flush is never forwarded again).
func (s *Sequencer) FlushLocal(ctx context.Context, stream log.StreamID) error {
	return s.flush(ctx, stream, false)
}

func (s *Sequencer) flush(ctx context.Context, stream log.StreamID, forward bool) (err error) {
	id := partition.ShardOf(string(stream), s.cfg.Shards)
	werr := s.untilOwner(ctx, id, "read "+string(stream), func(sh *shard, o owner) bool {
		if sh != nil && o.exists && o.Epoch > sh.epoch {
			sh = nil // taken over: this shard stops at its next renewal
		}
		switch {
		case sh != nil:
			err = sh.flushStream(ctx, stream, true)
			select {
			case <-sh.lost: // lost meanwhile: the new owner's catch-up writes it
				return false
			default:
			}
			if err == nil && !sh.leaseFresh() && !s.renewStale(ctx, sh) {
				// Not renewed for most of a TTL, and not renewable now (cut
				// off from Cassandra, say): another instance may have taken
				// the shard and acknowledged appends it has not written
				// yet, which this flush knows nothing of. A forwarded flush
				// says so (its sender asks the owner it reads next); a
				// local one waits for a renewal, or for the shards table to
				// name a newer owner (read again each try), then asks it.
				err = fmt.Errorf("shard %d: %w: its lease was not renewed for %s", id, log.ErrUnavailable, time.Since(sh.leaseSince()).Round(time.Millisecond))
				return !forward
			}
			return true
		case !forward:
			err = fmt.Errorf("shard %d: %w", id, log.ErrNotOwner)
			return true
		case !o.exists:
			// Never owned: nothing was ever committed to it. (A row
			// written since is read again.)
			fresh, rerr := s.readOwner(ctx, id)
			err = nil
			return rerr == nil && !fresh.exists
		case s.cfg.FlushRemote != nil && o.Owner != "" && o.Owner != s.cfg.Instance && o.Address != "":
			err = s.flushRemote(ctx, id, o, stream)
			return !errors.Is(err, log.ErrNotOwner) && !errors.Is(err, log.ErrUnavailable)
		}
		return false
	})
	if werr != nil {
		return werr
	}
	return err
}

// flushRemote asks o, the owner of stream's shard id, to flush it, and gives
// up (log.ErrNotOwner, so flush asks the owner it reads next) once the
// shards table names a newer owner. An owner paused past its lease
// (SIGSTOP, a VM stall) takes the request and answers nothing until it
// resumes, which held the read for the whole of its deadline, though its
// successor, whose takeover writes everything committed before it, could
// answer within a lease or two. It notices the newer owner when this
// instance records it (ownerOf), not at a poll.
func (s *Sequencer) flushRemote(ctx context.Context, id int, o owner, stream log.StreamID) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The call ends with fctx: no wait outlives it; its panic is raised
	// by Get, on the caller's goroutine.
	done := fanout.Start(func() error { return s.cfg.FlushRemote(fctx, o.Address, stream) })
	for {
		cur, moved := s.ownerOf(id)
		if cur.Epoch > o.Epoch {
			cancel()
			done.Get()
			return fmt.Errorf("shard %d: %w: taken over from %s while it was asked to flush", id, log.ErrNotOwner, o.Owner)
		}
		select {
		case <-done.Done():
			return done.Get()
		case <-moved:
		}
	}
}

// errOwnerMoved: a forwarded append was given up on, since its shard has
// a newer owner; append sends it there again (forwardRemote).
var errOwnerMoved = errors.New("the shard was taken over while the append was forwarded to its owner")

// forwardRemote forwards req to o, the owner of its shard id, and gives up
// on it (errOwnerMoved) once the shards table names a newer owner, while
// req was first forwarded (at sent) less than half an idempotency window
// ago. An owner paused past its lease (SIGSTOP, a VM stall) takes the
// request and answers nothing, which held the append until the peer
// client's timeout and answered it outcome_unknown, though the new owner
// could answer within a lease or two. It notices the newer owner when this
// instance records it (ownerOf), not at a poll; past the half window it
// waits for the answer, however late.
//
// Sending it again is safe because the new owner recognises it as a retry
// wherever the first attempt got to (docs/design-write-path.md, "Any
// instance accepts any request"):
//   - The paused owner commits nothing once the new owner has fenced the
//     shard log (every commit is conditioned on the epoch in the partition
//     it writes), and the new owner answers nothing before its fence and
//     catch-up (it serves the shard only then), so whatever the paused
//     owner committed, before or after the watch gave up on it, is in the
//     stream partitions before the new owner decides anything.
//   - The first attempt's ids were all recorded as client ids (a
//     forwarding instance sends every event's id, and the owner takes
//     them all for a client's), and the retry checks them all as such
//     (asRetry), also when this instance is the new owner. An exact
//     expected version (no_stream is exact 0) finds the events above it
//     and compares them, for ever; any and exists find the ids within the
//     window, which the half window left here keeps them in (a commit
//     happened after sent, and its ids are kept a window from their fill).
//     Either way the answer is the original versions, duplicate; append
//     clears duplicate when the request held an id the server made (the
//     stored append holds it too, so it is this request's first attempt).
//   - An answer the old owner sends after all goes to no one: the request
//     outlives its callers (Forwarder), and each append batched with this
//     one watches its own shard and moves on by itself.
func (s *Sequencer) forwardRemote(ctx context.Context, id int, o owner, req log.AppendRequest, sent time.Time) (log.AppendResult, error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		res log.AppendResult
		err error
	}
	// The call ends with fctx: no wait outlives it; its panic is raised
	// by Get, on the caller's goroutine.
	done := fanout.Start(func() answer {
		res, err := s.cfg.Forward(fctx, o.Address, req)
		return answer{res, err}
	})
	for {
		cur, moved := s.ownerOf(id)
		if cur.Epoch > o.Epoch && time.Since(sent) < s.cfg.IdempotencyWindow/2 {
			cancel()
			a := done.Get()
			// An answer that came meanwhile stands; one the cancel made
			// (unknown, not sent) or a refusal to commit does not.
			if a.err == nil || !errors.Is(a.err, log.ErrOutcomeUnknown) && !errors.Is(a.err, log.ErrUnavailable) && !errors.Is(a.err, log.ErrNotOwner) {
				return a.res, a.err
			}
			s.cfg.Logger.Info("forwarded append sent again: its shard was taken over", "shard", id, "from", o.Owner, "epoch", o.Epoch, "to", cur.Owner, "new_epoch", cur.Epoch)
			return log.AppendResult{}, fmt.Errorf("shard %d: %w: %v", id, errOwnerMoved, a.err)
		}
		select {
		case <-done.Done():
			a := done.Get()
			return a.res, a.err
		case <-moved:
		}
	}
}

// asRetry returns req with every event id marked a client's, without
// changing the caller's events: an append sent again after an attempt
// whose outcome is unknown must be checked by them all.
func asRetry(req log.AppendRequest) log.AppendRequest {
	evs := slices.Clone(req.Events)
	for i := range evs {
		evs[i].ClientID = true
	}
	req.Events = evs
	req.KeepIDs()
	return req
}

// renewStale renews sh's lease for a flush that found it stale (the
// ownership tick may be held up: by renewals of many shards one after
// another, or a slow Cassandra) and reports whether it is fresh again. One
// renewal at a time per shard; a paused instance (a test seam) renews
// nothing. Not applied means the shard was taken over: it stops.
func (s *Sequencer) renewStale(ctx context.Context, sh *shard) bool {
	if p := s.cfg.Paused; p != nil && p() {
		return false
	}
	sh.renewMu.Lock()
	defer sh.renewMu.Unlock()
	if sh.leaseFresh() {
		return true // renewed meanwhile
	}
	sent := time.Now()
	ok, err := s.renew(ctx, sh.id, sh.epoch)
	switch {
	case ok:
		sh.renewed(sent)
		return true
	case err == nil:
		sh.stop(fmt.Errorf("shard %d: lease taken over", sh.id))
	}
	return false
}

// Owned returns the shards this instance commits now.
func (s *Sequencer) Owned() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.shards))
	for id := range s.shards {
		out = append(out, id)
	}
	return out
}

// Close stops claiming, lets each owned shard commit and fill what it has
// queued, and releases the shards so another instance can take them at
// once.
func (s *Sequencer) Close(ctx context.Context) {
	close(s.closing)
	s.loop.Wait()
	// Takeovers in flight end (releasing their claims) rather than catch
	// up for a shard about to be handed over.
	s.endTakes()
	s.takes.Wait()
	s.mu.Lock()
	shards := s.shards
	s.shards = map[int]*shard{}
	s.mu.Unlock()
	s.leave(ctx)
	for _, sh := range shards {
		s.handOver(sh, 0)
	}
	// All at once, with the ticks' handovers still in flight, within the
	// caller's deadline: past it, drains and releases are cut short (a
	// commit in flight is still awaited: its outcome decides its callers'
	// answers).
	done := whenDone(&s.handovers)
	select {
	case <-done:
	case <-ctx.Done():
		s.endHandovers()
		<-done
	}
	s.endHandovers()
	// Stopped shards, head reads and notes end within their own timeouts;
	// past the deadline they fail on a closed session, harmlessly.
	select {
	case <-whenDone(&s.background):
	case <-ctx.Done():
	}
	s.blocks.close()
}

// releaseUnserved releases a shard claimed at epoch that never served.
func (s *Sequencer) releaseUnserved(shard int, epoch int64) {
	rctx, rcancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer rcancel()
	if err := s.release(rctx, shard, epoch); err != nil {
		s.cfg.Logger.Warn("release shard", "shard", shard, "err", err)
	}
}

// whenDone returns a channel closed once wg's goroutines have returned.
func whenDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	return ch
}
