package sequencer

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

// schema/schema.cql: shards. Every write is conditional: the epoch is the
// fencing token, and mixing plain writes with conditional ones on the same
// cells would let a client clock running ahead shadow later claims.
//
// schema_version is that of the binary that claimed the shard last; only
// a claim changes it, and a claim changes the epoch too, so the epoch
// condition of the next claim also guards the version it observed.
const (
	cqlOwners   = `SELECT shard, owner, address, epoch, lease_until, segment, schema_version FROM shards`
	cqlOwner    = `SELECT shard, owner, address, epoch, lease_until, segment, schema_version FROM shards WHERE shard = ?`
	cqlClaimNew = `INSERT INTO shards (shard, owner, address, epoch, lease_until, segment, schema_version) VALUES (?, ?, ?, 1, ?, 0, ?) IF NOT EXISTS`
	cqlClaim    = `UPDATE shards SET owner = ?, address = ?, epoch = ?, lease_until = ?, schema_version = ? WHERE shard = ? IF epoch = ? AND lease_until = ?`
	cqlRenew    = `UPDATE shards SET lease_until = ? WHERE shard = ? IF epoch = ? AND owner = ?`
	cqlRelease  = `UPDATE shards SET owner = '', lease_until = ? WHERE shard = ? IF epoch = ? AND owner = ?`
	cqlSegment  = `UPDATE shards SET segment = ? WHERE shard = ? IF epoch = ? AND segment < ?`
)

// owner is a shards row.
type owner struct {
	Shard      int
	Owner      string
	Address    string
	Epoch      int64
	LeaseUntil time.Time
	Segment    int64
	// SchemaVersion is the claiming binary's (0: a row from before
	// migration 0006).
	SchemaVersion int
	exists        bool
}

// leaseKey identifies one grant of a lease: a renewal or a claim changes it.
type leaseKey struct {
	owner string
	epoch int64
	until int64
}

func (o owner) key() leaseKey { return leaseKey{o.Owner, o.Epoch, o.LeaseUntil.UnixMilli()} }

// readOwners reads every shards row (a table of at most MaxShards rows).
func (s *Sequencer) readOwners(ctx context.Context) (map[int]owner, error) {
	iter := s.cfg.Session.Query(cqlOwners).WithContext(ctx).Idempotent(true).Iter()
	out := make(map[int]owner)
	var o owner
	for iter.Scan(&o.Shard, &o.Owner, &o.Address, &o.Epoch, &o.LeaseUntil, &o.Segment, &o.SchemaVersion) {
		o.exists = true
		out[o.Shard] = o
		o = owner{}
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read shard owners", err)
	}
	return out, nil
}

// readOwner reads one shards row.
func (s *Sequencer) readOwner(ctx context.Context, shard int) (owner, error) {
	o := owner{Shard: shard}
	err := s.cfg.Session.Query(cqlOwner, shard).WithContext(ctx).Idempotent(true).
		Scan(&o.Shard, &o.Owner, &o.Address, &o.Epoch, &o.LeaseUntil, &o.Segment, &o.SchemaVersion)
	if errors.Is(err, gocql.ErrNotFound) {
		return o, nil
	}
	if err != nil {
		return o, cql.ReadErr("read shard owner", err)
	}
	o.exists = true
	return o, nil
}

// claim takes shard from the observed row o (absent, released, or expired
// by observation) and returns the new epoch. ok is false when someone else
// changed the row first, or when a newer binary claimed it last: this one
// may not know where that one writes (a migration it does not carry).
func (s *Sequencer) claim(ctx context.Context, o owner) (epoch int64, ok bool, err error) {
	if o.SchemaVersion > s.cfg.SchemaVersion {
		s.refuseNewer(o)
		return 0, false, nil
	}
	until := s.cfg.Now().Add(s.cfg.LeaseTTL)
	var q *gocql.Query
	if !o.exists {
		epoch = 1
		q = s.cfg.Session.Query(cqlClaimNew, o.Shard, s.cfg.Instance, s.cfg.Address, until, s.cfg.SchemaVersion)
	} else {
		epoch = o.Epoch + 1
		q = s.cfg.Session.Query(cqlClaim, s.cfg.Instance, s.cfg.Address, epoch, until, s.cfg.SchemaVersion, o.Shard, o.Epoch, o.LeaseUntil)
	}
	applied, err := q.WithContext(ctx).SerialConsistency(s.cfg.Serial).MapScanCAS(map[string]any{})
	if err != nil {
		// Unknown: if it applied, the lease runs out unrenewed and the
		// shard is claimed again, under a higher epoch.
		return 0, false, fmt.Errorf("claim shard %d: %w", o.Shard, err)
	}
	return epoch, applied, nil
}

// refuseNewer logs, once per shard, that a newer binary holds it.
func (s *Sequencer) refuseNewer(o owner) {
	s.mu.Lock()
	first := s.refused[o.Shard] != o.SchemaVersion
	s.refused[o.Shard] = o.SchemaVersion
	s.mu.Unlock()
	if first {
		s.cfg.Logger.Warn("shard claimed last by a newer binary: this one will not claim it; upgrade it",
			"shard", o.Shard, "shard_schema_version", o.SchemaVersion, "schema_version", s.cfg.SchemaVersion)
	}
}

// renew extends this instance's lease on shard at epoch. ok is false when
// the shard was taken over.
func (s *Sequencer) renew(ctx context.Context, shard int, epoch int64) (ok bool, err error) {
	until := s.cfg.Now().Add(s.cfg.LeaseTTL)
	applied, err := s.cfg.Session.Query(cqlRenew, until, shard, epoch, s.cfg.Instance).
		WithContext(ctx).SerialConsistency(s.cfg.Serial).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("renew shard %d: %w", shard, err)
	}
	return applied, nil
}

// release gives up shard at epoch so another instance may claim it at once.
func (s *Sequencer) release(ctx context.Context, shard int, epoch int64) error {
	_, err := s.cfg.Session.Query(cqlRelease, s.cfg.Now(), shard, epoch, s.cfg.Instance).
		WithContext(ctx).SerialConsistency(s.cfg.Serial).MapScanCAS(map[string]any{})
	return err
}

// noteSegment records that shard's log continues in segment (a hint for
// the next owner's fencing walk; a stale hint only makes the walk longer).
func (s *Sequencer) noteSegment(ctx context.Context, shard int, epoch, segment int64) {
	_, err := s.cfg.Session.Query(cqlSegment, segment, shard, epoch, segment).
		WithContext(ctx).SerialConsistency(s.cfg.Serial).MapScanCAS(map[string]any{})
	if err != nil && !errors.Is(err, context.Canceled) {
		s.cfg.Logger.Warn("record log segment", "shard", shard, "segment", segment, "err", err)
	}
}

// observer judges leases of other instances by how long it has seen them
// unchanged, on this process's monotonic clock.
type observer struct {
	seen map[int]observation
}

type observation struct {
	key   leaseKey
	since time.Time // monotonic
}

// unchanged returns how long this observer has seen o's row exactly as it
// is now (0 the first time): a lease renewed in the meantime resets it, so
// a live owner's shard never looks expired, whatever the clocks say.
func (ob *observer) unchanged(o owner, now time.Time) time.Duration {
	prev, ok := ob.seen[o.Shard]
	if !ok || prev.key != o.key() {
		ob.seen[o.Shard] = observation{key: o.key(), since: now}
		return 0
	}
	return now.Sub(prev.since)
}

// claimable reports whether this instance should claim o's shard now,
// given the instance that should own it (desired). A free shard is
// claimed at once by its desired owner, by anyone after a lease TTL; a
// held one, once its lease was seen unrenewed for a TTL (its desired
// owner) or two (anyone else, so a shard never stays orphaned).
func (ob *observer) claimable(o owner, self, desired string, ttl time.Duration, now time.Time) bool {
	age := ob.unchanged(o, now)
	wait := ttl
	if !o.exists || o.Owner == "" {
		wait = 0
	}
	if desired != self {
		wait += ttl
	}
	return age >= wait && (wait > 0 || desired == self)
}
