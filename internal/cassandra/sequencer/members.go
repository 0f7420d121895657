package sequencer

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

// schema/schema.cql: instances. Plain writes with a TTL: a row that exists
// is an instance that wrote it within the TTL.
const (
	cqlHeartbeat = `INSERT INTO instances (id, address, started, version, schema_version) VALUES (?, ?, ?, ?, ?) USING TTL ?`
	cqlMembers   = `SELECT id, schema_version FROM instances`
	cqlLeave     = `DELETE FROM instances WHERE id = ?`
)

// heartbeat records this instance as live for three lease TTLs.
func (s *Sequencer) heartbeat(ctx context.Context) error {
	ttl := max(1, int(3*s.cfg.LeaseTTL/time.Second))
	err := s.cfg.Session.Query(cqlHeartbeat, s.cfg.Instance, s.cfg.Address, s.started, s.cfg.Version, s.cfg.SchemaVersion, ttl).
		WithContext(ctx).Idempotent(true).Exec()
	return cql.ReadErr("heartbeat", err)
}

// members returns the live instances' ids and the schema versions of
// their binaries (0: unknown).
func (s *Sequencer) members(ctx context.Context) (map[string]int, error) {
	iter := s.cfg.Session.Query(cqlMembers).WithContext(ctx).Idempotent(true).Iter()
	out := map[string]int{}
	var id string
	var v int
	for iter.Scan(&id, &v) {
		out[id] = v
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read instances", err)
	}
	return out, nil
}

// newest returns the members running the newest binary among them: the
// only ones shards are assigned to. During a rolling upgrade the upgraded
// instances take every shard as soon as one of them is live (the others
// forward to them), so an older binary stops writing at once rather than
// when it is stopped, and a shard never bounces between an owner the
// assignment names and one that may not claim it (claim).
func newest(members map[string]int) map[string]bool {
	top := 0
	for _, v := range members {
		top = max(top, v)
	}
	out := make(map[string]bool, len(members))
	for id, v := range members {
		if v == top {
			out[id] = true
		}
	}
	return out
}

// leave removes this instance's row so the others rebalance at once.
func (s *Sequencer) leave(ctx context.Context) {
	if err := s.cfg.Session.Query(cqlLeave, s.cfg.Instance).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		s.cfg.Logger.Warn("leave instances", "err", err)
	}
}

// assign returns the live instance that should own each of shards
// shards: every instance computes the same from the same membership, and
// each gets shards/len(members) of them, or one more (the first
// shards%len(members) to fill up). Pairs (instance, shard) are taken in
// the order of a rendezvous hash of the two, highest first, each while
// its shard is free and its instance has room: a shard goes to the
// instance that ranks it highest among those with room, so a change of
// membership moves about the shards the change must move, plus a few
// where the room ran out differently. Plain rendezvous hashing (each
// shard to its top instance) left the spread to chance: with 2 shards
// and 2 instances, half the time one instance owned both and the other
// forwarded everything.
func assign(members map[string]bool, shards int) []string {
	out := make([]string, shards)
	if len(members) == 0 {
		return out
	}
	type pair struct {
		h     uint64
		id    string
		shard int
	}
	pairs := make([]pair, 0, len(members)*shards)
	for id := range members {
		for sh := 0; sh < shards; sh++ {
			pairs = append(pairs, pair{rank(id, sh), id, sh})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(b.h, a.h); c != 0 {
			return c
		}
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return a.shard - b.shard
	})
	floor, extra := shards/len(members), shards%len(members)
	owned := make(map[string]int, len(members))
	left := shards
	for _, p := range pairs {
		if left == 0 {
			break
		}
		if out[p.shard] != "" {
			continue
		}
		switch n := owned[p.id]; {
		case n < floor:
		case n == floor && extra > 0:
			extra--
		default:
			continue
		}
		out[p.shard] = p.id
		owned[p.id]++
		left--
	}
	return out
}

// rank is the rendezvous hash of (instance, shard).
func rank(id string, shard int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{byte(shard >> 8), byte(shard)})
	return mix(h.Sum64())
}

// mix is MurmurHash3's 64-bit finaliser: FNV alone leaves the high bits
// of similar inputs (one id, consecutive shards) nearly equal, so one
// instance would win almost every shard.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
