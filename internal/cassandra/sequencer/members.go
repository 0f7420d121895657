package sequencer

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

// schema/schema.cql: instances. Plain writes with a TTL: a row that exists
// is an instance that wrote it within the TTL.
const (
	cqlHeartbeat = `INSERT INTO instances (id, address, started, version) VALUES (?, ?, ?, ?) USING TTL ?`
	cqlMembers   = `SELECT id FROM instances`
	cqlLeave     = `DELETE FROM instances WHERE id = ?`
)

// heartbeat records this instance as live for three lease TTLs.
func (s *Sequencer) heartbeat(ctx context.Context) error {
	ttl := max(1, int(3*s.cfg.LeaseTTL/time.Second))
	err := s.cfg.Session.Query(cqlHeartbeat, s.cfg.Instance, s.cfg.Address, s.started, s.cfg.Version, ttl).
		WithContext(ctx).Idempotent(true).Exec()
	return cql.ReadErr("heartbeat", err)
}

// members returns the live instances' ids.
func (s *Sequencer) members(ctx context.Context) (map[string]bool, error) {
	iter := s.cfg.Session.Query(cqlMembers).WithContext(ctx).Idempotent(true).Iter()
	out := map[string]bool{}
	var id string
	for iter.Scan(&id) {
		out[id] = true
	}
	if err := iter.Close(); err != nil {
		return nil, cql.ReadErr("read instances", err)
	}
	return out, nil
}

// leave removes this instance's row so the others rebalance at once.
func (s *Sequencer) leave(ctx context.Context) {
	if err := s.cfg.Session.Query(cqlLeave, s.cfg.Instance).WithContext(ctx).Exec(); err != nil {
		s.cfg.Logger.Warn("leave instances", "err", err)
	}
}

// desired returns the live instance that should own shard: the highest
// rendezvous hash of (instance, shard), so every instance computes the
// same spread from the same membership and a change of membership moves
// only the shards of the instance that came or went.
func desired(members map[string]bool, shard int) string {
	var (
		best  string
		bestH uint64
	)
	for id := range members {
		h := fnv.New64a()
		h.Write([]byte(id))
		h.Write([]byte{byte(shard >> 8), byte(shard)})
		if v := mix(h.Sum64()); best == "" || v > bestH || v == bestH && id < best {
			best, bestH = id, v
		}
	}
	return best
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
