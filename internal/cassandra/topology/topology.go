package topology

import (
	"context"
	"net"
	"sort"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// schema/schema.cql: instances, shards; Cassandra's system.local and
// system.peers.
const (
	cqlInstances = `SELECT id, address, started, version, schema_version FROM instances`
	cqlShards    = `SELECT shard, owner, epoch, lease_until FROM shards`
	cqlLocal     = `SELECT host_id, data_center, rack, release_version, rpc_address FROM system.local`
	cqlPeers     = `SELECT host_id, data_center, rack, release_version, rpc_address FROM system.peers`
)

// Reader reads a keyspace's topology.
type Reader struct {
	session  *gocql.Session
	keyspace string
	shards   int
	self     string
}

// New returns a Reader over session's keyspace, which has shards shards;
// self is the id of this instance.
func New(session *gocql.Session, keyspace string, shards int, self string) *Reader {
	return &Reader{session: session, keyspace: keyspace, shards: shards, self: self}
}

// Cluster implements log.ClusterStore. A shard is listed under its owner
// while the owner is a live instance (its heartbeat row, written with a
// TTL, exists); otherwise it is unowned (released, or being taken over).
// Its lease's end is not compared with this instance's clock: the owner's
// clock wrote it, and clocks may disagree by hours (the shards of a live
// owner behind this instance were all listed as unowned). An owner that
// stopped a shard without releasing it (an unknown commit outcome) is
// listed with it until another instance claims it, a lease TTL or two.
func (r *Reader) Cluster(ctx context.Context) (log.ClusterInfo, error) {
	out := log.ClusterInfo{Keyspace: r.keyspace, Shards: r.shards, Self: r.self}
	byID := map[string]int{}
	iter := r.session.Query(cqlInstances).WithContext(ctx).Idempotent(true).Iter()
	var in log.InstanceInfo
	for iter.Scan(&in.ID, &in.Address, &in.Started, &in.Version, &in.SchemaVersion) {
		in.Started = in.Started.UTC()
		byID[in.ID] = len(out.Instances)
		out.Instances = append(out.Instances, in)
		in = log.InstanceInfo{}
	}
	if err := iter.Close(); err != nil {
		return log.ClusterInfo{}, cql.ReadErr("read instances", err)
	}
	owned := map[int]bool{}
	iter = r.session.Query(cqlShards).WithContext(ctx).Idempotent(true).Iter()
	var (
		shard int
		owner string
		epoch int64
		until time.Time
	)
	for iter.Scan(&shard, &owner, &epoch, &until) {
		if i, ok := byID[owner]; ok {
			out.Instances[i].Shards = append(out.Instances[i].Shards, log.ShardLease{Shard: shard, Epoch: epoch, LeaseUntil: until.UTC()})
			owned[shard] = true
		}
	}
	if err := iter.Close(); err != nil {
		return log.ClusterInfo{}, cql.ReadErr("read shards", err)
	}
	for s := range r.shards {
		if !owned[s] {
			out.Unowned = append(out.Unowned, s)
		}
	}
	sort.Slice(out.Instances, func(i, j int) bool { return out.Instances[i].ID < out.Instances[j].ID })
	for i := range out.Instances {
		sh := out.Instances[i].Shards
		sort.Slice(sh, func(a, b int) bool { return sh[a].Shard < sh[b].Shard })
	}
	nodes, err := r.nodes(ctx)
	if err != nil {
		return log.ClusterInfo{}, err
	}
	out.Nodes = nodes
	return out, nil
}

// nodes lists the Cassandra nodes one live node knows (its system.local
// and system.peers, both asked of that node), each with the driver's state
// for it.
func (r *Reader) nodes(ctx context.Context) ([]log.NodeInfo, error) {
	state := map[string]string{}
	var via string
	for _, h := range r.session.GetHosts() {
		s := "down"
		if h.IsUp() {
			s = "up"
			if via == "" {
				via = h.HostID()
			}
		}
		state[h.HostID()] = s
	}
	var out []log.NodeInfo
	for i, stmt := range []string{cqlLocal, cqlPeers} {
		q := r.session.Query(stmt).WithContext(ctx).Idempotent(true)
		if via != "" {
			q = q.SetHostID(via)
		}
		iter := q.Iter()
		var (
			id                gocql.UUID
			dc, rack, release string
			addr              net.IP
		)
		for iter.Scan(&id, &dc, &rack, &release, &addr) {
			n := log.NodeInfo{Address: addr.String(), HostID: id.String(), DataCenter: dc, Rack: rack,
				ReleaseVersion: release, State: "unknown", Coordinator: i == 0}
			if s, ok := state[n.HostID]; ok {
				n.State = s
			}
			out = append(out, n)
		}
		if err := iter.Close(); err != nil {
			return nil, cql.ReadErr("read cassandra nodes", err)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Address < out[b].Address })
	return out, nil
}
